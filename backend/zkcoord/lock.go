package zkcoord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/driver"
	"github.com/go-zookeeper/zk"
)

// Contender node names: "_c_<guid>-lock-<sequence>". The GUID (Curator's
// "protected" prefix) lets a create whose answer was lost be found again.
const (
	protectedPrefix = "_c_"
	lockMarker      = "-lock-"
)

// Lock acquires name for the session (Curator's InterProcessMutex):
//
//  1. create the protected ephemeral-sequential node <dir>/_c_<guid>-lock-N,
//     in one transaction with a write to <dir> whose zxid is the new node's
//     creation zxid: the fencing token, with no extra round trip. The same
//     write returns <dir>'s stat: when the new node is its only child, the
//     lock is held after this one round trip;
//  2. otherwise list <dir>; the lowest sequence holds the lock;
//  3. otherwise watch only the predecessor (getData watch) and list again when
//     it is deleted: herd-free and FIFO. When the predecessor was the head of
//     the queue, its deletion alone hands the lock over, with no listing.
//
// An uncontended lock and unlock cost two requests (the transaction and the
// delete); the held lock sets no watch (see held).
//
// On failure (ctx done, session lost, Try refused) the node is deleted before
// Lock returns. The token is strictly greater for each successive holder:
// later nodes have greater creation zxids, and the holder order is node order.
func (c *client) Lock(ctx context.Context, ds driver.Session, name string, opts driver.LockOptions) (driver.Held, error) {
	s, ok := ds.(*session)
	if !ok || s.c != c {
		return nil, fmt.Errorf("zkcoord: lock %q: session does not belong to this client", name)
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	dir := c.recipePath("lock", name)
	var g [16]byte
	if _, err := rand.Read(g[:]); err != nil {
		return nil, fmt.Errorf("zkcoord: lock %q: %w", name, err)
	}
	guid := hex.EncodeToString(g[:])
	node, token, alone, err := s.createContender(ctx, dir, guid)
	if err != nil {
		cctx, cancel := cleanupContext(ctx, s)
		defer cancel()
		if cerr := s.deleteGUID(cctx, dir, guid); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
		return nil, fmt.Errorf("zkcoord: lock %q: %w", name, err)
	}
	if alone {
		// The node was dir's only child when it was created: the lock is
		// held, with no listing.
		if h, err := s.hold(ctx, node, token); err == nil {
			return h, nil
		}
	}
	h, err := s.acquire(ctx, dir, node, token, opts.Try)
	if err != nil {
		cctx, cancel := cleanupContext(ctx, s)
		defer cancel()
		if cerr := s.deleteNode(cctx, node); cerr != nil && s.Err() == nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
		return nil, fmt.Errorf("zkcoord: lock %q: %w", name, err)
	}
	return h, nil
}

// createContender creates this Lock call's node and returns its path and
// creation zxid. alone reports that the node was dir's only child right after
// the transaction (the parent's stat returned by its setData counts the new
// node): no older contender exists, so the lock is held. A create whose
// answer was lost is looked up by GUID before it is retried (alone is then
// false: the caller lists dir).
func (s *session) createContender(ctx context.Context, dir, guid string) (node string, zxid int64, alone bool, err error) {
	base := dir + "/" + protectedPrefix + guid + lockMarker
	create := func() ([]zk.MultiResponse, error) {
		return s.conn.Multi(
			&zk.CreateRequest{Path: base, Data: []byte(s.id), Acl: s.c.acl, Flags: zk.FlagEphemeral | zk.FlagSequence},
			&zk.SetDataRequest{Path: dir, Data: nil, Version: -1},
		)
	}
	late := func(r []zk.MultiResponse, err error) { // undo a create that succeeded after Lock gave up
		if err == nil && len(r) > 0 {
			cctx, cancel := cleanupContext(context.Background(), s)
			defer cancel()
			_ = s.deleteNode(cctx, r[0].String)
		}
	}
	for {
		r, err := call(ctx, s, create, late)
		switch {
		case err == nil && len(r) == 2 && r[1].Stat != nil:
			s.addNode(r[0].String)
			return r[0].String, r[1].Stat.Mzxid, r[1].Stat.NumChildren == 1, nil
		case err == nil:
			return "", 0, false, fmt.Errorf("create %s: unexpected multi response: %w", base, coord.ErrCorrupt)
		case errors.Is(err, zk.ErrNoNode):
			if _, err := call(ctx, s, func() (struct{}, error) { return struct{}{}, ensurePath(s.conn, dir, s.c.acl) }, nil); err != nil {
				return "", 0, false, err
			}
			continue
		case isConnErr(err) && s.Err() == nil:
			// The create may have happened: find it by GUID (Curator's protected mode).
			p, zxid, err := s.findGUID(ctx, dir, guid)
			if err != nil {
				return "", 0, false, err
			}
			if p != "" {
				s.addNode(p)
				return p, zxid, false, nil
			}
			continue
		default:
			return "", 0, false, err
		}
	}
}

// findGUID looks for the node of guid under dir, once a server answers, and
// returns its path and creation zxid ("" if there is none).
func (s *session) findGUID(ctx context.Context, dir, guid string) (string, int64, error) {
	for {
		p, st, err := s.lookupGUID(ctx, dir, guid)
		if err == nil {
			if st == nil {
				return "", 0, nil
			}
			return p, st.Czxid, nil
		}
		if !isConnErr(err) || s.Err() != nil {
			return "", 0, err
		}
		if err := pause(ctx, s); err != nil {
			return "", 0, err
		}
	}
}

// lookupGUID lists dir once and stats the child carrying guid.
func (s *session) lookupGUID(ctx context.Context, dir, guid string) (string, *zk.Stat, error) {
	children, err := call(ctx, s, func() ([]string, error) {
		c, _, err := s.conn.Children(dir)
		return c, err
	}, nil)
	if errors.Is(err, zk.ErrNoNode) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	for _, ch := range children {
		if !strings.HasPrefix(ch, protectedPrefix+guid) {
			continue
		}
		p := dir + "/" + ch
		st, err := call(ctx, s, func() (*zk.Stat, error) {
			ok, st, err := s.conn.Exists(p)
			if err == nil && !ok {
				return nil, nil
			}
			return st, err
		}, nil)
		if err != nil || st == nil {
			return "", nil, err
		}
		return p, st, nil
	}
	return "", nil, nil
}

// deleteGUID deletes any node of guid under dir: the cleanup of a create
// whose outcome is unknown. It goes on after the session ended (a shared
// connection keeps the node otherwise) and gives up with ctx.
func (s *session) deleteGUID(ctx context.Context, dir, guid string) error {
	if s.owned && s.Err() != nil {
		return nil // the connection is closed; the server drops the session's nodes
	}
	children, err := run(ctx, nil, func() ([]string, error) {
		c, _, err := s.conn.Children(dir)
		return c, err
	}, nil)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		if s.owned && s.Err() != nil {
			return nil
		}
		return fmt.Errorf("list %s: %w", dir, err)
	}
	var errs []error
	for _, ch := range children {
		if strings.HasPrefix(ch, protectedPrefix+guid) {
			errs = append(errs, s.deleteNode(ctx, dir+"/"+ch))
		}
	}
	return errors.Join(errs...)
}

// contenderSeq parses a contender node name, "_c_<32 hex>-lock-<digits>",
// and returns its sequence number. Other children (such as the node of a
// nested name like "a/b" under "a") are not contenders.
func contenderSeq(name string) (int64, bool) {
	const guidLen = 32
	rest, ok := strings.CutPrefix(name, protectedPrefix)
	if !ok || len(rest) < guidLen+len(lockMarker)+1 {
		return 0, false
	}
	for _, c := range rest[:guidLen] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return 0, false
		}
	}
	digits, ok := strings.CutPrefix(rest[guidLen:], lockMarker)
	if !ok {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	seq, err := strconv.ParseInt(digits, 10, 64)
	return seq, err == nil
}

// contenders returns the lock's contender node names in queue order.
func contenders(children []string) []string {
	type entry struct {
		name string
		seq  int64
	}
	es := make([]entry, 0, len(children))
	for _, ch := range children {
		if seq, ok := contenderSeq(ch); ok {
			es = append(es, entry{ch, seq})
		}
	}
	sort.Slice(es, func(i, j int) bool {
		if es[i].seq != es[j].seq {
			return es[i].seq < es[j].seq
		}
		return es[i].name < es[j].name
	})
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.name
	}
	return out
}

// acquire waits until node is the first contender of dir (or, with try,
// refuses at once) and returns the held lock.
func (s *session) acquire(ctx context.Context, dir, node string, token int64, try bool) (*held, error) {
	me := node[len(dir)+1:]
	for {
		children, err := call(ctx, s, func() ([]string, error) {
			c, _, err := s.conn.Children(dir)
			return c, err
		}, nil)
		if err != nil {
			if isConnErr(err) && s.Err() == nil {
				if err := pause(ctx, s); err != nil {
					return nil, err
				}
				continue
			}
			return nil, err
		}
		queue := contenders(children)
		i := indexOf(queue, me)
		switch {
		case i < 0:
			if err := s.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("contender node %s was deleted by someone else: %w", node, coord.ErrLockLost)
		case i == 0:
			return s.hold(ctx, node, token)
		case try:
			return nil, fmt.Errorf("%w (%d contender(s) ahead)", coord.ErrLocked, i)
		}
		// When the predecessor is the head, its deletion leaves node first:
		// no node is ever created with a lower sequence number, so the lock
		// is held without listing again (one round trip less per handoff).
		pred, predIsHead := dir+"/"+queue[i-1], i == 1
		wch, err := call(ctx, s, func() (<-chan zk.Event, error) {
			_, _, ch, err := s.conn.GetW(pred)
			return ch, err
		}, nil)
		switch {
		case errors.Is(err, zk.ErrNoNode) && predIsHead:
			return s.hold(ctx, node, token)
		case errors.Is(err, zk.ErrNoNode):
			continue // the predecessor left between the listing and the watch
		case err != nil && isConnErr(err) && s.Err() == nil:
			if err := pause(ctx, s); err != nil {
				return nil, err
			}
			continue
		case err != nil:
			return nil, err
		}
		select {
		case ev := <-wch:
			if ev.Type == zk.EventNodeDeleted && predIsHead {
				return s.hold(ctx, node, token)
			}
			// Changed, or the watch ended (connection, session): list again.
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s: %w", pred, ctx.Err())
		case <-s.Done():
			return nil, s.Err()
		}
	}
}

func indexOf(list []string, v string) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return -1
}
