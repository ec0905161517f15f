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
	"github.com/go-zookeeper/zk"
)

// Contender kinds of the recipes other than the lock. A contender node is
// named "_c_<guid>-<kind>-<sequence>", like the lock's "-lock-" nodes.
const (
	kindElect = "elect"
	kindRead  = "read"
	kindWrite = "write"
	kindSem   = "sem"
)

// newGUID returns the random GUID of a protected node.
func newGUID() (string, error) {
	var g [16]byte
	if _, err := rand.Read(g[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(g[:]), nil
}

// createProtected creates the protected ephemeral-sequential node
// <dir>/_c_<guid>-<kind>-N holding data, in one transaction with a write to
// dir whose zxid is the node's creation zxid (the token the lock uses too),
// and returns its path and creation zxid. A create whose answer was lost is
// looked up by GUID before it is retried; a create that succeeds after the
// call gave up is deleted.
func (s *session) createProtected(ctx context.Context, dir, guid, kind string, data []byte) (string, int64, error) {
	base := dir + "/" + protectedPrefix + guid + "-" + kind + "-"
	create := func() ([]zk.MultiResponse, error) {
		return s.conn.Multi(
			&zk.CreateRequest{Path: base, Data: data, Acl: s.c.acl, Flags: zk.FlagEphemeral | zk.FlagSequence},
			&zk.SetDataRequest{Path: dir, Data: nil, Version: -1},
		)
	}
	late := func(r []zk.MultiResponse, err error) {
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
			return r[0].String, r[1].Stat.Mzxid, nil
		case err == nil:
			return "", 0, fmt.Errorf("create %s: unexpected multi response: %w", base, coord.ErrCorrupt)
		case errors.Is(err, zk.ErrNoNode):
			if _, err := call(ctx, s, func() (struct{}, error) { return struct{}{}, ensurePath(s.conn, dir, s.c.acl) }, nil); err != nil {
				return "", 0, err
			}
		case isConnErr(err) && s.Err() == nil:
			p, zxid, err := s.findGUID(ctx, dir, guid)
			if err != nil {
				return "", 0, err
			}
			if p != "" {
				s.addNode(p)
				return p, zxid, nil
			}
		default:
			return "", 0, err
		}
	}
}

// enqueue creates this call's protected node of kind under dir; on failure
// it removes whatever the create may have left (with a fresh context).
func (s *session) enqueue(ctx context.Context, dir, kind string, data []byte) (node string, token int64, err error) {
	guid, err := newGUID()
	if err != nil {
		return "", 0, err
	}
	node, token, err = s.createProtected(ctx, dir, guid, kind, data)
	if err != nil {
		cctx, cancel := cleanupContext(ctx, s)
		defer cancel()
		if cerr := s.deleteGUID(cctx, dir, guid); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
		return "", 0, err
	}
	return node, token, nil
}

// dequeue deletes node after a failed acquisition, with a fresh context,
// and joins a cleanup failure to err.
func (s *session) dequeue(ctx context.Context, node string, err error) error {
	cctx, cancel := cleanupContext(ctx, s)
	defer cancel()
	if cerr := s.deleteNode(cctx, node); cerr != nil && s.Err() == nil {
		err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
	}
	return err
}

// entry is a contender node of a queue.
type entry struct {
	name string
	kind string
	seq  int64
}

// parseProtected parses "_c_<32 hex>-<kind>-<digits>".
func parseProtected(name string) (entry, bool) {
	const guidLen = 32
	rest, ok := strings.CutPrefix(name, protectedPrefix)
	if !ok || len(rest) < guidLen+3 || rest[guidLen] != '-' {
		return entry{}, false
	}
	for _, c := range rest[:guidLen] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return entry{}, false
		}
	}
	kind, digits, ok := strings.Cut(rest[guidLen+1:], "-")
	if !ok || kind == "" || digits == "" {
		return entry{}, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return entry{}, false
		}
	}
	seq, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return entry{}, false
	}
	return entry{name: name, kind: kind, seq: seq}, true
}

// queueOf returns the children that are contender nodes of the given kinds,
// in sequence order.
func queueOf(children []string, kinds ...string) []entry {
	var q []entry
	for _, ch := range children {
		e, ok := parseProtected(ch)
		if !ok {
			continue
		}
		for _, k := range kinds {
			if e.kind == k {
				q = append(q, e)
				break
			}
		}
	}
	sort.Slice(q, func(i, j int) bool {
		if q[i].seq != q[j].seq {
			return q[i].seq < q[j].seq
		}
		return q[i].name < q[j].name
	})
	return q
}

func indexOfEntry(q []entry, name string) int {
	for i, e := range q {
		if e.name == name {
			return i
		}
	}
	return -1
}

// children lists dir for the session, retrying while the connection is
// down (ErrNoNode is returned as is).
func (s *session) children(ctx context.Context, dir string) ([]string, error) {
	for {
		ch, err := call(ctx, s, func() ([]string, error) {
			c, _, err := s.conn.Children(dir)
			return c, err
		}, nil)
		if err != nil && isConnErr(err) && s.Err() == nil {
			if err := pause(ctx, s); err != nil {
				return nil, err
			}
			continue
		}
		return ch, err
	}
}

// watchNode arms a getData watch on p and returns its channel and the
// node's stat; a nil channel with a nil error means p is gone.
func (s *session) watchNode(ctx context.Context, p string) (<-chan zk.Event, *zk.Stat, error) {
	type res struct {
		ch <-chan zk.Event
		st *zk.Stat
	}
	for {
		r, err := call(ctx, s, func() (res, error) {
			_, st, ch, err := s.conn.GetW(p)
			return res{ch, st}, err
		}, nil)
		switch {
		case err == nil:
			return r.ch, r.st, nil
		case errors.Is(err, zk.ErrNoNode):
			return nil, nil, nil
		case isConnErr(err) && s.Err() == nil:
			if err := pause(ctx, s); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, err
		}
	}
}

// waitEvent waits for one of the watch channels to fire, ctx, or the end of
// the session.
func (s *session) waitEvent(ctx context.Context, what string, chs ...<-chan zk.Event) error {
	if len(chs) == 1 {
		select {
		case <-chs[0]:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-s.Done():
			return s.Err()
		}
	}
	// Several watches (a semaphore's first waiter): fan in.
	fired := make(chan struct{}, len(chs))
	stop := make(chan struct{})
	defer close(stop)
	for _, ch := range chs {
		go func() {
			select {
			case <-ch:
				fired <- struct{}{}
			case <-stop:
			}
		}()
	}
	select {
	case <-fired:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
	case <-s.Done():
		return s.Err()
	}
}
