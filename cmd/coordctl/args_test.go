package main

import (
	"bytes"
	"reflect"
	"testing"
)

func TestPrepareArgs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []string
		want    []string
		cmd     []string
		sawDash bool
	}{
		{"flags before NAME unchanged",
			[]string{"coordctl", "lock", "--try", "n", "--", "sh", "-c", "x"},
			[]string{"coordctl", "lock", "--try", "n"}, []string{"sh", "-c", "x"}, true},
		{"flags after NAME moved before it",
			[]string{"coordctl", "--backend", "etcd://h:1", "lock", "n", "--wait", "1s", "--kill-after=2s", "--", "cmd"},
			[]string{"coordctl", "--backend", "etcd://h:1", "lock", "--wait", "1s", "--kill-after=2s", "n"}, []string{"cmd"}, true},
		{"CMD's flags stay CMD's",
			[]string{"coordctl", "lock", "n", "--", "ls", "--try", "--", "-x"},
			[]string{"coordctl", "lock", "n"}, []string{"ls", "--try", "--", "-x"}, true},
		{"bool flag does not take the next argument",
			[]string{"coordctl", "lock", "n", "--try", "extra", "--", "true"},
			[]string{"coordctl", "lock", "--try", "n", "extra"}, []string{"true"}, true},
		{"no dash",
			[]string{"coordctl", "lock", "n"},
			[]string{"coordctl", "lock", "n"}, nil, false},
		{"unknown flag after NAME left in place",
			[]string{"coordctl", "lock", "n", "--nope", "--", "x"},
			[]string{"coordctl", "lock", "n", "--nope"}, []string{"x"}, true},
		{"not a CMD command: -- left to the parser",
			[]string{"coordctl", "dev", "--", "--listen"},
			[]string{"coordctl", "dev", "--", "--listen"}, nil, false},
		{"elect: flags after NAME moved, CMD split off",
			[]string{"coordctl", "elect", "n", "--value", "v", "--", "sh", "--value"},
			[]string{"coordctl", "elect", "--value", "v", "n"}, []string{"sh", "--value"}, true},
		{"barrier enter: a subcommand that runs CMD",
			[]string{"coordctl", "barrier", "enter", "n", "--count", "3", "--", "run", "--count"},
			[]string{"coordctl", "barrier", "enter", "--count", "3", "n"}, []string{"run", "--count"}, true},
		{"barrier wait runs no CMD: -- left to the parser",
			[]string{"coordctl", "barrier", "wait", "n", "--", "x"},
			[]string{"coordctl", "barrier", "wait", "n", "--", "x"}, nil, false},
		{"unknown command untouched",
			[]string{"coordctl", "nosuch", "a", "--", "b"},
			[]string{"coordctl", "nosuch", "a", "--", "b"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &state{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
			got := st.prepareArgs(newApp(st), tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("args = %q, want %q", got, tc.want)
			}
			if !reflect.DeepEqual(st.cmd, tc.cmd) || st.sawDash != tc.sawDash {
				t.Errorf("cmd = %q (dash %v), want %q (dash %v)", st.cmd, st.sawDash, tc.cmd, tc.sawDash)
			}
		})
	}
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		out  string
	}{
		{nil, 0, ""},
		{usage("do this", "that is wrong"), 2, "coordctl: that is wrong: do this\n"},
		{withCode(7, nil, "", ""), 7, ""},
		{withCode(3, nil, "retry", "lock %q held", "x"), 3, "coordctl: lock \"x\" held: retry\n"},
		{fail(errTest, "", "open"), 1, "coordctl: open: boom\n"},
		{errTest, 1, "coordctl: boom\n"},
	} {
		var b bytes.Buffer
		if code := exitStatus(&b, tc.err, false); code != tc.code || b.String() != tc.out {
			t.Errorf("exitStatus(%v) = %d, %q; want %d, %q", tc.err, code, b.String(), tc.code, tc.out)
		}
	}
}

func TestExitStatusJSON(t *testing.T) {
	var b bytes.Buffer
	code := exitStatus(&b, withCode(3, nil, "retry", "held"), true)
	want := `{"event":"error","code":3,"message":"coordctl: held: retry"}` + "\n"
	if code != 3 || b.String() != want {
		t.Errorf("got %d %q, want 3 %q", code, b.String(), want)
	}
}

type testErr string

func (e testErr) Error() string { return string(e) }

const errTest = testErr("boom")
