package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/conformance/local"
	"github.com/coordkit/coord/recipes/election"
)

// RunElection runs the election contract (SPEC §4) against h.
func RunElection(t *testing.T, h Harness) {
	t.Run("OneLeaderAndIncreasingTerms", func(t *testing.T) { electOneLeader(t, h) })
	t.Run("ResignHandsOver", func(t *testing.T) { electResign(t, h) })
	t.Run("ExpiredLeaderIsReplaced", func(t *testing.T) { electExpired(t, h) })
	t.Run("ObserversSeeIncreasingTermsAndEndOnCurrent", func(t *testing.T) { electObservers(t, h) })
	t.Run("CancelledCampaignLeavesNoState", func(t *testing.T) { electCancelled(t, h) })
	t.Run("NoLeader", func(t *testing.T) { electNoLeader(t, h) })
	t.Run("KilledLeaderIsReplaced", func(t *testing.T) { electKilled(t, h) })
}

func newElection(t testing.TB, s *coord.Session, name string) *election.Election {
	t.Helper()
	e, err := election.New(s, name)
	if err != nil {
		t.Fatalf("election.New: %v", err)
	}
	return e
}

func electionContenders(t testing.TB, c *coord.Client, name string, want int, within time.Duration) {
	t.Helper()
	waitRecipeContenders(t, c, "election", name, want, within)
}

func electOneLeader(t *testing.T, h Harness) {
	const candidates, rounds = 8, 7 // 56 terms
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	var (
		inside, overlap atomic.Int32
		mu              sync.Mutex
		tokens          []coord.Token
		wg              sync.WaitGroup
	)
	errs := make(chan error, candidates)
	for i := 0; i < candidates; i++ {
		e := newElection(t, newSession(t, h, c), "leader")
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				term, err := e.Campaign(ctxFor(t, 2*time.Minute), []byte(fmt.Sprintf("c%d-r%d", i, r)))
				if err != nil {
					errs <- err
					return
				}
				if inside.Add(1) != 1 {
					overlap.Add(1)
				}
				mu.Lock()
				tokens = append(tokens, term.Token())
				mu.Unlock()
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				if err := term.Resign(ctxFor(t, 10*time.Second)); err != nil {
					errs <- err
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("candidate: %v", err)
	}
	if n := overlap.Load(); n != 0 {
		t.Fatalf("two leaders at once %d times among %d candidates", n, candidates)
	}
	if len(tokens) != candidates*rounds {
		t.Fatalf("%d terms, want %d", len(tokens), candidates*rounds)
	}
	checkIncreasing(t, tokens)
	electionContenders(t, c, "leader", 0, 5*time.Second)
}

func electResign(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	a := newElection(t, newSession(t, h, c), "resign")
	b := newElection(t, newSession(t, h, c), "resign")
	ta, err := a.Campaign(ctxFor(t, 10*time.Second), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *election.Term, 1)
	go func() {
		tb, err := b.Campaign(ctxFor(t, time.Minute), []byte("b"))
		if err != nil {
			t.Errorf("b.Campaign: %v", err)
			close(got)
			return
		}
		got <- tb
	}()
	electionContenders(t, c, "resign", 2, 10*time.Second)
	start := time.Now()
	if err := ta.Resign(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(ta.Err(), election.ErrNotLeader) {
		t.Fatalf("Err() after Resign = %v, want ErrNotLeader", ta.Err())
	}
	select {
	case tb, ok := <-got:
		if !ok {
			return
		}
		t.Logf("%s: successor leader %v after resign", h.Backend(), time.Since(start).Round(time.Microsecond))
		if tb.Token() <= ta.Token() {
			t.Fatalf("successor token %d not greater than %d", tb.Token(), ta.Token())
		}
		l, err := b.Leader(ctxFor(t, 10*time.Second))
		if err != nil || l.Token != tb.Token() || string(l.Value) != "b" {
			t.Fatalf("Leader() = %+v, %v; want token %d value b", l, err, tb.Token())
		}
		if err := ta.Proclaim(ctxFor(t, 10*time.Second), []byte("stale")); !errors.Is(err, election.ErrNotLeader) {
			t.Fatalf("Proclaim after Resign: %v, want ErrNotLeader", err)
		}
		if err := ta.Resign(ctxFor(t, 10*time.Second)); !errors.Is(err, election.ErrNotLeader) {
			t.Fatalf("second Resign: %v, want ErrNotLeader", err)
		}
		if err := tb.Resign(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no successor within 10s of a resign")
	}
}

func electExpired(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	sa := newSession(t, h, c)
	ta, err := newElection(t, sa, "expire").Campaign(ctxFor(t, 10*time.Second), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	b := newElection(t, newSession(t, h, c), "expire")
	got := make(chan *election.Term, 1)
	go func() {
		tb, err := b.Campaign(ctxFor(t, time.Minute), []byte("b"))
		if err != nil {
			t.Errorf("b.Campaign: %v", err)
			close(got)
			return
		}
		got <- tb
	}()
	electionContenders(t, c, "expire", 2, 10*time.Second)
	h.ExpireSession(t, sa)
	select {
	case <-ta.Done():
	case <-time.After(3*h.TTL() + 5*time.Second):
		t.Fatal("leader's term not done after its session expired")
	}
	if !errors.Is(ta.Err(), election.ErrLeadershipLost) || !errors.Is(ta.Err(), coord.ErrSessionExpired) {
		t.Fatalf("Err() = %v, want ErrLeadershipLost and ErrSessionExpired", ta.Err())
	}
	if err := ta.Proclaim(ctxFor(t, 10*time.Second), []byte("x")); !errors.Is(err, election.ErrNotLeader) {
		t.Fatalf("Proclaim after loss: %v, want ErrNotLeader", err)
	}
	select {
	case tb, ok := <-got:
		if !ok {
			return
		}
		if tb.Token() <= ta.Token() {
			t.Fatalf("successor token %d not greater than %d", tb.Token(), ta.Token())
		}
		if err := tb.Resign(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	case <-time.After(3*h.TTL() + 5*time.Second):
		t.Fatal("no successor after the leader's session expired")
	}
}

// observed records what one observer delivered.
type observed struct {
	mu  sync.Mutex
	all []election.Leader
}

func (o *observed) last() (election.Leader, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.all) == 0 {
		return election.Leader{}, false
	}
	return o.all[len(o.all)-1], true
}

func electObservers(t *testing.T, h Harness) {
	const observers, terms = 4, 20
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	recs := make([]*observed, observers)
	var wg sync.WaitGroup
	var stops []*election.Observer
	for i := range recs {
		oc := h.NewClient(t, coord.WithNamespace(c.Namespace()))
		o, err := election.Observe(ctx, oc, "observed")
		if err != nil {
			t.Fatal(err)
		}
		stops = append(stops, o)
		rec := &observed{}
		recs[i] = rec
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case l := <-o.C():
					rec.mu.Lock()
					rec.all = append(rec.all, l)
					rec.mu.Unlock()
				case <-o.Done():
					return
				}
			}
		}()
	}
	defer func() {
		for _, o := range stops {
			o.Stop()
		}
		wg.Wait()
	}()
	// The first delivery is the current state: no leader yet.
	for i, rec := range recs {
		waitFor(t, 10*time.Second, fmt.Sprintf("observer %d's first delivery", i), func() bool { _, ok := rec.last(); return ok })
		if first := rec.all[0]; first.Elected() {
			t.Fatalf("observer %d: first delivery %+v, want no leader", i, first)
		}
	}
	sessions := []*coord.Session{newSession(t, h, c), newSession(t, h, c)}
	var final *election.Term
	for i := 0; i < terms; i++ {
		e := newElection(t, sessions[i%2], "observed")
		term, err := e.Campaign(ctxFor(t, 30*time.Second), []byte(fmt.Sprintf("v%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if i%5 == 4 {
			if err := term.Proclaim(ctxFor(t, 10*time.Second), []byte(fmt.Sprintf("v%d-proclaimed", i))); err != nil {
				t.Fatal(err)
			}
		}
		if i == terms-1 {
			final = term
			break
		}
		if err := term.Resign(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	want := []byte(fmt.Sprintf("v%d-proclaimed", terms-1))
	for i, rec := range recs {
		waitFor(t, 15*time.Second, fmt.Sprintf("observer %d to end on the current leader", i), func() bool {
			l, ok := rec.last()
			return ok && l.Token == final.Token() && bytes.Equal(l.Value, want)
		})
		rec.mu.Lock()
		var prev coord.Token
		for j, l := range rec.all {
			if l.Elected() && l.Token < prev {
				t.Errorf("observer %d: delivery %d went back from term %d to %d", i, j, prev, l.Token)
			}
			if l.Elected() {
				prev = l.Token
			}
		}
		rec.mu.Unlock()
	}
	if err := final.Resign(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	for i, rec := range recs {
		waitFor(t, 15*time.Second, fmt.Sprintf("observer %d to see no leader after the last resign", i), func() bool {
			l, ok := rec.last()
			return ok && !l.Elected()
		})
	}
}

func electCancelled(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	ta, err := newElection(t, newSession(t, h, c), "cancel").Campaign(ctxFor(t, 10*time.Second), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	b := newElection(t, newSession(t, h, c), "cancel")
	checkCancelledWait(t, c, "election", "cancel", 1, func(ctx context.Context) error { _, err := b.Campaign(ctx, []byte("b")); return err })
	if err := ta.Resign(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	electionContenders(t, c, "cancel", 0, 5*time.Second)
}

func electNoLeader(t *testing.T, h Harness) {
	c := h.NewClient(t, coord.WithNamespace(uniqueNamespace(t)))
	if _, err := election.LeaderOf(ctxFor(t, 10*time.Second), c, "none"); !errors.Is(err, election.ErrNoLeader) {
		t.Fatalf("Leader of an empty election: %v, want ErrNoLeader", err)
	}
	e := newElection(t, newSession(t, h, c), "none")
	term, err := e.Campaign(ctxFor(t, 10*time.Second), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.Leader(ctxFor(t, 10*time.Second))
	if err != nil || l.Token != term.Token() || string(l.Value) != "x" {
		t.Fatalf("Leader() = %+v, %v", l, err)
	}
	if err := term.Resign(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Leader(ctxFor(t, 10*time.Second)); !errors.Is(err, election.ErrNoLeader) {
		t.Fatalf("Leader after the only leader resigned: %v, want ErrNoLeader", err)
	}
}

func electKilled(t *testing.T, h Harness) {
	ns := uniqueNamespace(t)
	marker := filepath.Join(t.TempDir(), "token")
	token, stop := startHolder(t, h, ns, marker, "elect", "killed")
	c := h.NewClient(t, coord.WithNamespace(ns))
	l, err := election.LeaderOf(ctxFor(t, 10*time.Second), c, "killed")
	if err != nil || uint64(l.Token) != token {
		t.Fatalf("Leader while coordctl leads: %+v, %v; want token %d", l, err, token)
	}
	e := newElection(t, newSession(t, h, c), "killed")
	bound := lossBound(h)
	killed := time.Now()
	stop()
	term, err := e.Campaign(ctxFor(t, bound+30*time.Second), []byte("successor"))
	took := time.Since(killed)
	if err != nil {
		t.Fatalf("Campaign after the leader was killed: %v", err)
	}
	t.Logf("%s: leader killed with SIGKILL, successor elected after %v (bound %v)", h.Backend(), took.Round(time.Millisecond), bound)
	if took > bound {
		t.Errorf("successor elected after %v, want within %v", took, bound)
	}
	if uint64(term.Token()) <= token {
		t.Errorf("successor token %d not greater than the killed leader's %d", term.Token(), token)
	}
	if err := term.Resign(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func lossBound(h Harness) time.Duration {
	if lb, ok := h.(LossBounder); ok {
		return lb.LossBound()
	}
	return h.TTL() + time.Second
}

// startHolder runs `coordctl <verb> NAME -- sh …` in its own process group;
// CMD writes its COORD_FENCING_TOKEN to marker and sleeps. It returns the
// token once CMD runs, and a function that SIGKILLs the whole group.
func startHolder(t *testing.T, h Harness, ns, marker, verb, name string) (uint64, func()) {
	t.Helper()
	cmd := exec.Command(local.Coordctl(t), "--backend", h.URL(), "--namespace", ns, "--ttl", h.TTL().String(),
		verb, name, "--", "sh", "-c", `echo "$COORD_FENCING_TOKEN" > "$1.tmp" && mv "$1.tmp" "$1" && exec sleep 120`, "sh", marker)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	kill := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	t.Cleanup(kill)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(marker); err == nil {
			v, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
			if perr != nil {
				t.Fatalf("COORD_FENCING_TOKEN = %q: %v", b, perr)
			}
			return v, kill
		}
		select {
		case <-exited:
			t.Fatalf("coordctl %s exited before running CMD:\n%s", verb, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("coordctl %s did not run CMD within 60s:\n%s", verb, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond (a test observation) until it holds or within passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
