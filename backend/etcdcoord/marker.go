package etcdcoord

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/coordkit/coord"
)

// markerKey is the session's marker: a key bound to its lease, so that the
// lease's end (revoked or expired on the server) deletes it and the
// session's one watch on it learns of that at once.
func (s *session) markerKey() string { return s.c.root + "session/" + s.hex }

// putMarker writes the marker bound to the lease and returns its revision.
func (s *session) putMarker(ctx context.Context) (int64, error) {
	resp, err := s.c.cli.Put(ctx, s.markerKey(), "", clientv3.WithLease(s.id))
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// denied reports a permission error: a user who may not write the marker
// still gets sessions, whose revoked lease the keep-alive then reports.
func denied(err error) bool {
	return errors.Is(err, rpctypes.ErrPermissionDenied)
}

// markerPause is the pause before the marker watch is opened again after it
// failed (compaction, a member restart); only on that path.
const markerPause = 500 * time.Millisecond

// watchMarker ends the session as expired when its marker is deleted with
// the lease. It watches from the revision after the marker's put (rev), so
// no delete can slip by. If the marker was deleted by hand while the lease
// lives, it puts it back and goes on. It returns when ctx is cancelled (the
// session closes or its keep-alive loop ends) or once the session ended.
func (s *session) watchMarker(ctx context.Context, rev int64) {
	defer s.loops.Done()
	key := s.markerKey()
	from := rev + 1
	for ctx.Err() == nil && s.Err() == nil {
		deleted, next := s.watchOnce(ctx, key, from)
		from = max(from, next)
		if ctx.Err() != nil {
			return
		}
		if !deleted {
			// The watch failed: read the marker, and watch again after it.
			if !sleep(ctx, markerPause) {
				return
			}
			g, err := s.c.cli.Get(ctx, key)
			if err != nil {
				continue
			}
			if len(g.Kvs) > 0 && g.Kvs[0].CreateRevision == rev {
				from = g.Header.Revision + 1
				continue
			}
		}
		if rev = s.markerGone(ctx); rev == 0 {
			return
		}
		from = rev + 1
	}
}

// watchOnce watches key from revision from until it is deleted (true) or the
// watch fails or closes (false); next is the revision to resume from.
func (s *session) watchOnce(ctx context.Context, key string, from int64) (deleted bool, next int64) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next = from
	for wr := range s.c.cli.Watch(wctx, key, clientv3.WithRev(from), clientv3.WithFilterPut()) {
		if wr.Err() != nil {
			return false, next
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypeDelete {
				return true, next
			}
		}
		next = wr.Header.Revision + 1
	}
	return false, next
}

// markerGone handles the marker's deletion: when the lease is gone, the
// session ends as expired and markerGone returns 0. Otherwise someone deleted
// the marker by hand; it is put back and its new revision returned.
func (s *session) markerGone(ctx context.Context) int64 {
	for ctx.Err() == nil {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		gone := s.leaseGone(lctx)
		cancel()
		if gone || s.Err() != nil {
			return 0
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		rev, err := s.putMarker(pctx)
		cancel()
		switch {
		case err == nil:
			return rev
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			s.end(fmt.Errorf("etcd lease %s: %w: the server reports the lease gone", s.hex, coord.ErrSessionExpired))
			return 0
		case denied(err):
			return 0 // the keep-alive still reports the lease's end
		}
		if !sleep(ctx, markerPause) {
			return 0
		}
	}
	return 0
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
