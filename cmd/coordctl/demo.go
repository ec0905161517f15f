package main

import "github.com/urfave/cli/v2"

func demoCommand(st *state) *cli.Command {
	return &cli.Command{Name: "demo", Usage: "self-contained lock demo on an embedded etcd (in progress)",
		Action: func(c *cli.Context) error { return fail(nil, "", "demo: not implemented yet") }}
}
