package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/recipes/election"
)

const electUsage = "usage: coordctl elect [--value V] [--kill-after D] NAME -- CMD [ARGS...]  or  coordctl elect --observe NAME"

func electCommand(st *state) *cli.Command {
	return &cli.Command{
		Name:      "elect",
		Usage:     "run CMD while leader of the election NAME, or --observe its leaders",
		ArgsUsage: "NAME -- CMD [ARGS...]",
		Description: "Campaigns in the election NAME (with --value V, what observers see as the leader's value)\n" +
			"and waits to become leader, then runs CMD with COORD_ELECTION_NAME and COORD_FENCING_TOKEN\n" +
			"(the term's token, greater than every earlier leader's) in its environment. When CMD exits,\n" +
			"coordctl resigns and exits with CMD's exit code. SIGINT, SIGTERM and SIGHUP are forwarded to\n" +
			"CMD; coordctl resigns once CMD has exited. A signal while still campaigning withdraws the\n" +
			"candidacy and exits 3. If leadership is lost while CMD runs (session expired), CMD gets\n" +
			"SIGTERM, then SIGKILL after --kill-after, and coordctl exits 4.\n" +
			"\n" +
			"With --observe, coordctl runs no CMD and needs no session: it prints the current leader,\n" +
			"then one line per change (`leader name=NAME token=T value=V`, or `no leader name=NAME`;\n" +
			"with --output json, {\"name\":…,\"value\":…,\"token\":…,\"leader\":true|false}), terms only in\n" +
			"increasing order (a short-lived leader may be skipped), until SIGINT or SIGTERM (exit 0).\n" +
			"\n" +
			"With --output json (without --observe), progress events (campaigning, elected, started,\n" +
			"signal, lost, exited, resigned) go to stderr as JSON lines; stdout is left to CMD.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "value", Usage: "the leader's value `V` that observers see (e.g. its address)"},
			&cli.BoolFlag{Name: "observe", Usage: "print every leader change instead of campaigning"},
			&cli.DurationFlag{Name: "kill-after", Value: 10 * time.Second, Usage: "after a loss, SIGKILL CMD if it is still running `D` after SIGTERM"},
		},
		Action: func(c *cli.Context) error {
			if c.Bool("observe") {
				return st.runObserve(c)
			}
			return st.runElect(c)
		},
	}
}

func leaderCommand(st *state) *cli.Command {
	return &cli.Command{
		Name:      "leader",
		Usage:     "print the current leader of the election NAME",
		ArgsUsage: "NAME",
		Description: "Prints `leader name=NAME token=T value=V` (with --output json,\n" +
			"{\"name\":…,\"value\":…,\"token\":…,\"leader\":true}) and exits 0; when there is no leader,\n" +
			"prints `no leader name=NAME` ({…,\"leader\":false}) and exits 3.",
		Action: func(c *cli.Context) error { return st.runLeader(c) },
	}
}

// electionName checks the single NAME argument of an election command.
func electionName(c *cli.Context, cmd, usageText string) (string, error) {
	args := c.Args().Slice()
	switch {
	case len(args) == 0:
		return "", usage(usageText, "%s: missing NAME", cmd)
	case len(args) > 1:
		return "", usage(usageText, "%s: unexpected argument %q after NAME", cmd, args[1])
	}
	if err := coord.ValidateName(args[0]); err != nil {
		return "", usage("choose another election name", "%s: %v", cmd, err)
	}
	return args[0], nil
}

func (st *state) runElect(c *cli.Context) error {
	g, err := st.globals(c)
	if err != nil {
		return err
	}
	name, err := electionName(c, "elect", electUsage)
	if err != nil {
		return err
	}
	killAfter := c.Duration("kill-after")
	switch {
	case !st.sawDash || len(st.cmd) == 0:
		return usage(electUsage, "elect: missing CMD after -- (or use --observe)")
	case killAfter < 0:
		return usage(electUsage, "elect: --kill-after %s is negative", killAfter)
	}
	what := fmt.Sprintf("election %q", name)

	k := catchSignals(c.Context)
	defer k.close()
	cn, err := st.connect(g, k, true, "not elected in "+what)
	if err != nil {
		return err
	}
	defer cn.close(g, c.Context)

	ev := g.events(st)
	e, err := election.New(cn.sess, name)
	if err != nil {
		k.stopWatch()
		return fail(err, "", "elect")
	}
	ev.emitEvent(event{Event: "campaigning", Election: name, Session: cn.sess.ID()})
	term, err := e.Campaign(k.ctx, []byte(c.String("value")))
	k.stopWatch()
	if err == nil && context.Cause(k.ctx) != nil {
		// A signal arrived just as leadership was won: honour it.
		err = context.Cause(k.ctx)
		rctx, rcancel := g.cleanupCtx(c.Context)
		_ = term.Resign(rctx)
		rcancel()
	}
	if err != nil {
		ev.emitEvent(event{Event: "not-elected", Election: name, Error: err.Error()})
		if intr, ok := k.interrupt(); ok {
			return withCode(exitNotAcquired, nil, "", "not elected in %s: %s; candidacy withdrawn, nothing was run", what, intr.Error())
		}
		if errors.Is(err, coord.ErrUnsupported) {
			return fail(err, "use another backend", "cannot campaign in %s", what)
		}
		return fail(err, backendHint, "cannot campaign in %s", what)
	}
	token := uint64(term.Token())
	ev.emitEvent(event{Event: "elected", Election: name, Token: token, Session: cn.sess.ID()})
	return st.runHolding(c, g, holding{
		what:    "leadership of " + what,
		kind:    "election",
		name:    name,
		token:   token,
		done:    term.Done(),
		err:     term.Err,
		lostErr: coord.ErrLeadershipLost,
		release: func(ctx context.Context) error {
			err := term.Resign(ctx)
			if errors.Is(err, coord.ErrNotLeader) {
				return nil // already ended
			}
			return err
		},
		released: "resigned",
		env: []string{"COORD_ELECTION_NAME=" + name,
			"COORD_FENCING_TOKEN=" + strconv.FormatUint(token, 10)},
	}, k.sigs, killAfter)
}
