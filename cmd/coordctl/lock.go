package main

import "github.com/urfave/cli/v2"

func lockCommand(st *state) *cli.Command {
	return &cli.Command{Name: "lock", Usage: "run CMD while holding a lock (in progress)",
		Action: func(c *cli.Context) error { return fail(nil, "", "lock: not implemented yet") }}
}
