package main_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// untilFile is a CMD that touches ready, then runs until stop exists.
func untilFile(ready, stop string) []string {
	return []string{"sh", "-c", `touch "$0"; while [ ! -e "$1" ]; do sleep 0.05; done`, ready, stop}
}

func TestElectRunsCMDWithEnvAndExitCode(t *testing.T) {
	s := startServer(t)
	var last uint64
	for i, want := range []int{7, 0, 42} {
		r := coordctl(t, s.env, "elect", "--value", "host-a", "jobs/sched", "--", "sh", "-c",
			`echo "$COORD_ELECTION_NAME $COORD_FENCING_TOKEN"; exit `+strconv.Itoa(want))
		if r.code != want {
			t.Fatalf("run %d: exit %d, want CMD's %d\nstderr: %s", i, r.code, want, r.stderr)
		}
		name, tok, _ := strings.Cut(strings.TrimSpace(r.stdout), " ")
		if name != "jobs/sched" {
			t.Fatalf("COORD_ELECTION_NAME = %q", name)
		}
		n, err := strconv.ParseUint(tok, 10, 64)
		if err != nil || n <= last {
			t.Fatalf("run %d: COORD_FENCING_TOKEN = %q, want a number > %d", i, tok, last)
		}
		last = n
	}
	// Resigned when CMD exited: no leader, no candidacy left.
	r := coordctl(t, s.env, "leader", "jobs/sched")
	if r.code != 3 || strings.TrimSpace(r.stdout) != "no leader name=jobs/sched" {
		t.Fatalf("leader after resign: exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if n := s.entries(t, "election", "jobs/sched"); n != 0 {
		t.Fatalf("%d candidacies left after coordctl exited", n)
	}
}

func TestElectOneLeaderAtATime(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	stop1 := filepath.Join(dir, "stop1")
	first := start(t, s.env, "elect", "e", "--", "sh", "-c",
		`echo "start $COORD_FENCING_TOKEN" >> "$0"; touch "$0.1"; while [ ! -e "$1" ]; do sleep 0.05; done; echo "end $COORD_FENCING_TOKEN" >> "$0"`, log, stop1)
	waitFile(t, log+".1", 15*time.Second)
	second := start(t, s.env, "elect", "e", "--", "sh", "-c",
		`echo "start $COORD_FENCING_TOKEN" >> "$0"; echo "end $COORD_FENCING_TOKEN" >> "$0"; exit 3`, log)
	waitFor(t, 15*time.Second, "second candidacy queued", func() bool { return s.entries(t, "election", "e") == 2 })
	time.Sleep(300 * time.Millisecond)
	if b, _ := os.ReadFile(log); strings.Count(string(b), "start") != 1 {
		t.Fatalf("second CMD ran while the first leader's CMD runs: %q", b)
	}
	// The leader is the first one.
	r := coordctl(t, s.env, "leader", "e")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "leader name=e token=") {
		t.Fatalf("leader: exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if err := os.WriteFile(stop1, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := first.wait(t, 15*time.Second); r.code != 0 {
		t.Fatalf("first: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if r := second.wait(t, 15*time.Second); r.code != 3 {
		t.Fatalf("second: exit %d, want its CMD's 3\nstderr: %s", r.code, r.stderr)
	}
	lines := readLines(t, log)
	if len(lines) != 4 {
		t.Fatalf("log %q, want 4 lines", lines)
	}
	t1 := strings.TrimPrefix(lines[0], "start ")
	t2 := strings.TrimPrefix(lines[2], "start ")
	if lines[1] != "end "+t1 || lines[3] != "end "+t2 {
		t.Fatalf("terms overlap: %q", lines)
	}
	if n1, n2 := atou(t, t1), atou(t, t2); n2 <= n1 {
		t.Fatalf("tokens %d then %d, want increasing", n1, n2)
	}
}

func TestElectLostWhileCMDRuns(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	marker, ready := filepath.Join(dir, "marker"), filepath.Join(dir, "ready")
	args := append([]string{"--ttl", "2s", "--output", "json", "elect", "--kill-after", "5s", "lost"}, "--")
	p := start(t, s.env, append(args, trapCMD(marker, ready, "0")...)...)
	waitFile(t, ready, 15*time.Second)

	s.revokeAll(t) // the leader's session expires on the server
	r := p.wait(t, 10*time.Second)
	if r.code != 4 {
		t.Fatalf("exit %d, want 4 (lost)\nstderr: %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != "TERM" {
		t.Fatalf("CMD did not get SIGTERM (marker %q, %v)", b, err)
	}
	if !strings.Contains(r.stderr, `"event":"lost"`) || !strings.Contains(r.stderr, `"election":"lost"`) {
		t.Fatalf("loss not reported as a JSON event: %s", r.stderr)
	}
}

func TestElectInterruptedWhileCampaigning(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	ready, stop := filepath.Join(dir, "ready"), filepath.Join(dir, "stop")
	leader := start(t, s.env, append([]string{"elect", "busy", "--"}, untilFile(ready, stop)...)...)
	waitFile(t, ready, 15*time.Second)

	ran := filepath.Join(dir, "ran")
	w := start(t, s.env, "--output", "json", "elect", "busy", "--", "touch", ran)
	waitFor(t, 15*time.Second, "candidate queued", func() bool {
		return strings.Contains(w.stderr.String(), `"campaigning"`) && s.entries(t, "election", "busy") == 2
	})
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	if r := w.wait(t, 10*time.Second); r.code != 3 {
		t.Fatalf("SIGTERM while campaigning: exit %d, want 3\nstderr: %s", r.code, r.stderr)
	}
	if n := s.entries(t, "election", "busy"); n != 1 {
		t.Fatalf("%d candidacies after the interrupted candidate exited, want the leader's only", n)
	}
	if exists(ran) {
		t.Fatalf("CMD ran although never elected")
	}

	// The leader resigns when its CMD ends.
	_ = os.WriteFile(stop, nil, 0o644)
	if r := leader.wait(t, 10*time.Second); r.code != 0 {
		t.Fatalf("leader: exit %d\nstderr: %s", r.code, r.stderr)
	}
	if n := s.entries(t, "election", "busy"); n != 0 {
		t.Fatalf("%d candidacies after the leader exited", n)
	}
}

func TestElectSIGTERMForwardedThenResigns(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	marker, ready := filepath.Join(dir, "marker"), filepath.Join(dir, "ready")
	p := start(t, s.env, append([]string{"elect", "fwd", "--"}, trapCMD(marker, ready, "5")...)...)
	waitFile(t, ready, 15*time.Second)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if r := p.wait(t, 10*time.Second); r.code != 5 {
		t.Fatalf("exit %d, want CMD's 5\nstderr: %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != "TERM" {
		t.Fatalf("SIGTERM not forwarded to CMD (marker %q, %v)", b, err)
	}
	if r := coordctl(t, s.env, "leader", "fwd"); r.code != 3 {
		t.Fatalf("leader after the resign: exit %d, stdout %q", r.code, r.stdout)
	}
}

// leaderJSON is one line of `elect --observe`/`leader` with --output json.
type leaderJSON struct {
	Name   string  `json:"name"`
	Value  string  `json:"value"`
	Token  *uint64 `json:"token"`
	Leader *bool   `json:"leader"`
}

func TestElectObserveAndLeader(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	text := start(t, s.env, "elect", "--observe", "obs")
	js := start(t, s.env, "--output", "json", "elect", "--observe", "obs")
	waitFor(t, 15*time.Second, "observers print the initial state", func() bool {
		return strings.Contains(text.stdout.String(), "\n") && strings.Contains(js.stdout.String(), "\n")
	})
	if r := coordctl(t, s.env, "--output", "json", "leader", "obs"); r.code != 3 ||
		strings.TrimSpace(r.stdout) != `{"name":"obs","value":"","token":0,"leader":false}` {
		t.Fatalf("leader with none: exit %d, stdout %q", r.code, r.stdout)
	}

	values := []string{"a", "b b", "c"}
	for i, v := range values {
		ready, stop := filepath.Join(dir, "ready"+strconv.Itoa(i)), filepath.Join(dir, "stop"+strconv.Itoa(i))
		p := start(t, s.env, append([]string{"elect", "--value", v, "obs", "--"}, untilFile(ready, stop)...)...)
		waitFile(t, ready, 15*time.Second)
		want := "value=" + strconv.Quote(v)
		if v != "b b" {
			want = "value=" + v
		}
		waitFor(t, 10*time.Second, "observer sees "+v, func() bool {
			return strings.HasSuffix(strings.TrimSpace(text.stdout.String()), want) &&
				strings.Contains(js.stdout.String(), `"value":"`+v+`"`)
		})
		if i == 1 {
			r := coordctl(t, s.env, "leader", "obs")
			if r.code != 0 || !strings.HasPrefix(r.stdout, "leader name=obs token=") || !strings.HasSuffix(strings.TrimSpace(r.stdout), ` value="b b"`) {
				t.Fatalf("leader: exit %d, stdout %q", r.code, r.stdout)
			}
			r = coordctl(t, s.env, "--output", "json", "leader", "obs")
			var l leaderJSON
			if err := json.Unmarshal([]byte(r.stdout), &l); r.code != 0 || err != nil || l.Leader == nil || !*l.Leader || l.Value != "b b" || l.Name != "obs" {
				t.Fatalf("leader --output json: exit %d, stdout %q (%v)", r.code, r.stdout, err)
			}
		}
		_ = os.WriteFile(stop, nil, 0o644)
		if r := p.wait(t, 15*time.Second); r.code != 0 {
			t.Fatalf("elect %s: exit %d\nstderr: %s", v, r.code, r.stderr)
		}
		waitFor(t, 10*time.Second, "observer sees no leader after "+v+" resigned", func() bool {
			return strings.HasSuffix(strings.TrimSpace(text.stdout.String()), "no leader name=obs") &&
				strings.HasSuffix(strings.TrimSpace(js.stdout.String()), `"leader":false}`)
		})
	}
	for _, o := range []*proc{text, js} {
		_ = o.cmd.Process.Signal(syscall.SIGTERM)
		if r := o.wait(t, 10*time.Second); r.code != 0 {
			t.Fatalf("observer after SIGTERM: exit %d\nstderr: %s", r.code, r.stderr)
		}
	}

	// Text: exactly no leader, then each leader with a greater token and
	// no leader again after each resigned.
	lines := strings.Split(strings.TrimSpace(text.res.stdout), "\n")
	if len(lines) != 2*len(values)+1 {
		t.Fatalf("text observer printed %q, want %d lines", lines, 2*len(values)+1)
	}
	var last uint64
	for i, line := range lines {
		if i%2 == 0 {
			if line != "no leader name=obs" {
				t.Fatalf("line %d = %q, want no leader", i, line)
			}
			continue
		}
		var tok uint64
		var val string
		rest, ok := strings.CutPrefix(line, "leader name=obs token=")
		if ok {
			var tokS string
			tokS, val, ok = strings.Cut(rest, " value=")
			tok = atou(t, tokS)
		}
		want := values[i/2]
		if want == "b b" {
			want = `"b b"`
		}
		if !ok || val != want || tok <= last {
			t.Fatalf("line %d = %q, want leader value %s with a token > %d", i, line, want, last)
		}
		last = tok
	}

	// JSON: the same sequence as objects.
	jl := strings.Split(strings.TrimSpace(js.res.stdout), "\n")
	if len(jl) != 2*len(values)+1 {
		t.Fatalf("JSON observer printed %q", jl)
	}
	last = 0
	for i, line := range jl {
		var l leaderJSON
		if err := json.Unmarshal([]byte(line), &l); err != nil || l.Name != "obs" || l.Leader == nil || l.Token == nil {
			t.Fatalf("JSON line %q: %v", line, err)
		}
		if i%2 == 0 {
			if *l.Leader || *l.Token != 0 {
				t.Fatalf("JSON line %d = %q, want no leader", i, line)
			}
			continue
		}
		if !*l.Leader || l.Value != values[i/2] || *l.Token <= last {
			t.Fatalf("JSON line %d = %q, want leader %q with a token > %d", i, line, values[i/2], last)
		}
		last = *l.Token
	}
}

func TestElectUsage(t *testing.T) {
	s := startServer(t)
	for _, args := range [][]string{
		{"elect"},
		{"elect", "n"},
		{"elect", "n", "--"},
		{"elect", "n", "extra", "--", "true"},
		{"elect", "--observe", "n", "--", "true"},
		{"elect", "--observe", "--value", "v", "n"},
		{"elect", "--kill-after", "-1s", "n", "--", "true"},
		{"elect", "bad//name", "--", "true"},
		{"leader"},
		{"leader", "a", "b"},
	} {
		if r := coordctl(t, s.env, args...); r.code != 2 || !strings.Contains(r.stderr, "coordctl: ") {
			t.Errorf("coordctl %q: exit %d, want 2\nstderr: %s", args, r.code, r.stderr)
		}
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		lines = append(lines, sc.Text())
	}
	return lines
}

func atou(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("token %q: %v", s, err)
	}
	return n
}
