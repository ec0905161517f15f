package coord

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	good := []string{"a", "reports", "team-a/jobs.nightly", "x:y@z=1+2", "A_B", strings.Repeat("n", MaxNameLen)}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", n, err)
		}
	}
	bad := map[string]string{
		"":                                "empty",
		strings.Repeat("n", MaxNameLen+1): "limit",
		"../etc":                          "segment",
		"a/../b":                          "segment",
		"a/./b":                           "segment",
		"/abs":                            "empty segment",
		"trail/":                          "empty segment",
		"a//b":                            "empty segment",
		"nul\x00":                         "contains",
		"space here":                      "contains",
		"ünï":                             "contains",
		"star*":                           "contains",
	}
	for n, want := range bad {
		err := ValidateName(n)
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", n, err)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateName(%q) = %q, want it to mention %q", n, err, want)
		}
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"a", "a/b", "..", "a//b", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateName(s) != nil {
			return
		}
		for _, seg := range strings.Split(s, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted %q with segment %q", s, seg)
			}
		}
		if strings.ContainsAny(s, "\x00 \\*?") || len(s) > MaxNameLen {
			t.Fatalf("accepted %q", s)
		}
	})
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"etcd://h:1", "zk://u:p@a,b/c", "consul://h?token=x", "redis://[::1]:1/0", "x://"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURL(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("error does not wrap ErrInvalidURL: %v", err)
			}
			return
		}
		if len(u.Hosts) == 0 {
			t.Fatalf("parsed %q with no hosts", s)
		}
		_ = u.Redacted()
	})
}
