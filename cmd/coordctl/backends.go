package main

import (
	"context"

	"github.com/redis/go-redis/v9"

	// The backends coordctl can open with --backend. Replace with a blank
	// import of github.com/coordkit/coord/backend/all once that package exists.
	_ "github.com/coordkit/coord/backend/consulcoord"
	_ "github.com/coordkit/coord/backend/etcdcoord"
	_ "github.com/coordkit/coord/backend/rediscoord"
	_ "github.com/coordkit/coord/backend/zkcoord"
)

func init() {
	// go-redis logs dial failures to stderr on its own; coordctl reports
	// errors itself, in one line.
	redis.SetLogger(quietLogger{})
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
