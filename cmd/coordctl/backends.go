package main

import (
	"context"

	"github.com/redis/go-redis/v9"

	// Every built-in backend, for --backend.
	_ "github.com/coordkit/coord/backend/all"
)

func init() {
	// go-redis logs dial failures to stderr on its own; coordctl reports
	// errors itself, in one line.
	redis.SetLogger(quietLogger{})
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
