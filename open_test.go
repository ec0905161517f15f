package coord

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coordkit/coord/driver"
)

type stubDriver struct{ driver.Client }

func TestOpenUnknownScheme(t *testing.T) {
	_, err := Open(context.Background(), "nosuch://h:1")
	if !errors.Is(err, ErrUnknownScheme) {
		t.Fatalf("err = %v, want ErrUnknownScheme", err)
	}
	Register(func(ctx context.Context, u *URL, o Options) (driver.Client, error) { return stubDriver{}, nil }, "teststub")
	t.Cleanup(func() { registryMu.Lock(); delete(registry, "teststub"); registryMu.Unlock() })
	_, err = Open(context.Background(), "nosuch://h:1")
	if !errors.Is(err, ErrUnknownScheme) || !strings.Contains(err.Error(), "teststub") {
		t.Fatalf("err = %v, want ErrUnknownScheme listing the known schemes", err)
	}
}

func TestOpenErrorsAreRedactedAndTimely(t *testing.T) {
	Register(func(ctx context.Context, u *URL, o Options) (driver.Client, error) {
		<-ctx.Done() // a server that never answers
		return nil, errors.New("dial " + u.String() + ": " + ctx.Err().Error())
	}, "hang")
	t.Cleanup(func() { registryMu.Lock(); delete(registry, "hang"); registryMu.Unlock() })
	start := time.Now()
	_, err := Open(context.Background(), "hang://u:s3cret@h:1?token=t0ken", WithDialTimeout(200*time.Millisecond))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Open took %v with a 200ms dial timeout", took)
	}
	for _, secret := range []string{"s3cret", "t0ken"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error leaks %q: %v", secret, err)
		}
	}
	if !strings.Contains(err.Error(), "hang://u:xxxxx@h:1") {
		t.Fatalf("error does not name the redacted URL: %v", err)
	}
}

func TestOpenRejectsBadNamespace(t *testing.T) {
	_, err := Open(context.Background(), "etcd://h:1", WithNamespace("../x"))
	if !errors.Is(err, ErrInvalidName) {
		t.Fatalf("err = %v, want ErrInvalidName", err)
	}
}
