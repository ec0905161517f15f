package etcdcoord

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/coord/driver"
)

// errCompacted makes Observe read the candidates again at once.
var errCompacted = errors.New("etcd observe: watch revision compacted")

// Observe reads every candidacy of name, calls fn with the leader (the
// oldest candidacy; LeaderInfo{} when there is none), and then watches the
// candidacy prefix from the revision after that read, so no change in
// between is missed. It keeps the candidacies in memory, applies each watch
// response to them and calls fn whenever the leader's token or value
// changed: no read per change, whatever the number of observers.
//
// When the watch fails (revision compacted, no leader, a member gone), it
// reads again and watches from that read's revision, so once changes stop
// the last call of fn reports the current leader. Reads that fail are
// retried with a backoff up to a second; only an authorization failure or a
// closed etcd client ends Observe with an error. It returns a wrapped
// ctx.Err() when ctx is done.
func (c *client) Observe(ctx context.Context, name string, fn func(driver.LeaderInfo)) error {
	pfx := c.electionPrefix(name)
	var (
		last      driver.LeaderInfo
		delivered bool
	)
	deliver := func(li driver.LeaderInfo) {
		if delivered && li.Token == last.Token && bytes.Equal(li.Value, last.Value) {
			return
		}
		last, delivered = li, true
		fn(li)
	}
	backoff := 20 * time.Millisecond
	for {
		cands, rev, err := c.readCandidates(ctx, pfx)
		if err == nil {
			deliver(leaderOf(cands))
			err = c.followCandidates(ctx, pfx, cands, rev+1, deliver)
			if errors.Is(err, errCompacted) {
				continue
			}
			backoff = 20 * time.Millisecond
		}
		if ctx.Err() != nil {
			return fmt.Errorf("etcd observe %q: %w", name, ctx.Err())
		}
		if permanent(err) || c.cli.Ctx().Err() != nil {
			return fmt.Errorf("etcd observe %q: %w", name, c.rpcErr(ctx, "observe", err))
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("etcd observe %q: %w", name, ctx.Err())
		}
		backoff = min(2*backoff, time.Second)
	}
}

// permanent reports errors that waiting will not cure.
func permanent(err error) bool {
	for _, e := range []error{rpctypes.ErrPermissionDenied, rpctypes.ErrUserEmpty,
		rpctypes.ErrAuthFailed, rpctypes.ErrAuthNotEnabled} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// readCandidates reads every candidacy under pfx, keyed by key, and the
// revision of the read.
func (c *client) readCandidates(ctx context.Context, pfx string) (map[string]*mvccpb.KeyValue, int64, error) {
	resp, err := c.cli.Get(ctx, pfx, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, err
	}
	cands := make(map[string]*mvccpb.KeyValue, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		cands[string(kv.Key)] = kv
	}
	return cands, resp.Header.Revision, nil
}

// leaderOf returns the oldest candidacy as LeaderInfo.
func leaderOf(cands map[string]*mvccpb.KeyValue) driver.LeaderInfo {
	var lead *mvccpb.KeyValue
	for _, kv := range cands {
		if lead == nil || kv.CreateRevision < lead.CreateRevision {
			lead = kv
		}
	}
	if lead == nil {
		return driver.LeaderInfo{}
	}
	return driver.LeaderInfo{Token: uint64(lead.CreateRevision), Value: lead.Value}
}

// followCandidates watches pfx from revision from, applies every event to
// cands and delivers the leader after each watch response. It returns when
// the watch fails (errCompacted when from was compacted) or ctx is done.
func (c *client) followCandidates(ctx context.Context, pfx string, cands map[string]*mvccpb.KeyValue, from int64, deliver func(driver.LeaderInfo)) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range c.cli.Watch(wctx, pfx, clientv3.WithPrefix(), clientv3.WithRev(from)) {
		if wr.CompactRevision != 0 {
			return errCompacted
		}
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			switch ev.Type {
			case clientv3.EventTypePut:
				cands[string(ev.Kv.Key)] = ev.Kv
			case clientv3.EventTypeDelete:
				delete(cands, string(ev.Kv.Key))
			}
		}
		if len(wr.Events) > 0 {
			deliver(leaderOf(cands))
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("etcd observe: watch closed")
}
