package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/coordkit/coord/internal/devetcd"
)

func devCommand(st *state) *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run a single-member etcd for development until SIGINT/SIGTERM",
		Description: "Starts an embedded etcd (plain HTTP, no auth) and prints its backend URL on stdout once it\n" +
			"accepts requests (a JSON object with --output json). Without --data-dir it keeps its data in a\n" +
			"temporary directory removed at exit. For development and tests only.",
		ArgsUsage: " ",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: devetcd.DefaultListen, Usage: "client address `HOST:PORT` (port 0 picks a free one)"},
			&cli.StringFlag{Name: "data-dir", Usage: "data `DIR` kept across restarts (default: a temporary directory removed at exit)"},
		},
		Action: func(c *cli.Context) error {
			g, err := st.globals(c)
			if err != nil {
				return err
			}
			if c.Args().Present() {
				return usage("run 'coordctl dev --help'", "dev takes no arguments, got %q", c.Args().First())
			}
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sigs)
			ctx, cancel := context.WithCancel(c.Context)
			defer cancel()
			go func() {
				select {
				case <-sigs:
					cancel()
				case <-ctx.Done():
				}
			}()

			srv, err := devetcd.Start(ctx, devetcd.Config{Listen: c.String("listen"), DataDir: c.String("data-dir")})
			if err != nil {
				if ctx.Err() != nil {
					return nil // interrupted while starting: a clean stop
				}
				return fail(err, "choose another address with --listen HOST:PORT, or check --data-dir", "cannot start the dev server")
			}
			g.out(st).emit(srv.URL(), struct {
				Event    string `json:"event"`
				URL      string `json:"url"`
				Endpoint string `json:"endpoint"`
				DataDir  string `json:"data_dir"`
			}{"ready", srv.URL(), srv.Endpoint(), srv.DataDir()})

			var runErr error
			select {
			case <-ctx.Done():
			case err := <-srv.Err():
				runErr = fail(err, "restart it", "the dev server failed")
			}
			if err := srv.Close(); err != nil && runErr == nil {
				runErr = fail(err, "remove it by hand", "the dev server stopped but left its data directory")
			}
			return runErr
		},
	}
}
