// Command coordctl is coord's command-line tool: run a command while holding
// a distributed lock, a semaphore permit or leadership, use barriers, run a
// local etcd for development, and more (see `coordctl --help` and SPEC §9).
//
// Exit codes: CMD's own code when coordctl ran a CMD; 1 error; 2 usage;
// 3 not acquired (--try found the lock held, --wait or --timeout expired,
// coordctl was interrupted while waiting, `leader` found no leader); 4 the
// lock, leadership or session was lost while CMD ran.
package main

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/coordkit/coord"
)

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}

// state is what one run of coordctl shares between its commands.
type state struct {
	stdout, stderr io.Writer
	// cmd is everything after the first "--" for a command that runs a CMD
	// (see runsCMD); sawDash tells whether "--" was given at all.
	cmd     []string
	sawDash bool
	// json is set once the global flags asked for --output json.
	json bool
}

// runsCMD lists the command paths whose arguments after "--" are a command
// line to execute. For them, "--" and what follows never reach urfave/cli,
// so CMD's own flags are never taken for coordctl's.
var runsCMD = map[string]bool{"lock": true, "elect": true, "queue take": true, "barrier enter": true}

// run runs coordctl with args (args[0] is the program name) and returns the
// exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	st := &state{stdout: stdout, stderr: stderr}
	app := newApp(st)
	args = st.prepareArgs(app, args)
	err := app.RunContext(ctx, args)
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		// Only urfave/cli's own errors are cli.ExitCoders here (e.g. "No help
		// topic for 'x'"): they are usage errors.
		err = usage("run 'coordctl --help'", "%v", err)
	}
	return exitStatus(stderr, err, st.json)
}

func newApp(st *state) *cli.App {
	app := &cli.App{
		Name:  "coordctl",
		Usage: "distributed coordination (locks, elections, barriers, ...) on etcd, ZooKeeper, Redis or Consul",
		UsageText: "coordctl [global options] command [command options] [arguments...]\n\n" +
			"   coordctl lock --try nightly-report -- ./report.sh\n" +
			"   coordctl --backend zk://127.0.0.1:2181 lock --wait 30s db-migrate -- ./migrate.sh\n" +
			"   coordctl lock --limit 4 encoders -- ./encode.sh\n" +
			"   coordctl elect --value $(hostname) scheduler -- ./scheduler\n" +
			"   coordctl dev",
		Description: "Exit codes: CMD's own code when CMD ran; 1 error; 2 usage; 3 not acquired " +
			"(--try found the lock held, --wait or --timeout expired, interrupted while waiting, no leader); " +
			"4 the lock, leadership or session was lost while CMD ran.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "backend", Value: coord.DefaultURL, EnvVars: []string{"COORD_BACKEND"},
				Usage: "backend `URL`: etcd://, etcds://, zk://, redis://, rediss://, consul://, consuls://"},
			&cli.DurationFlag{Name: "ttl", Value: coord.DefaultTTL, EnvVars: []string{"COORD_TTL"},
				Usage: "session TTL: how long ownership survives after coordctl stops renewing it"},
			&cli.DurationFlag{Name: "dial-timeout", Value: coord.DefaultDialTimeout, EnvVars: []string{"COORD_DIAL_TIMEOUT"},
				Usage: "how long to wait for the backend to answer"},
			&cli.StringFlag{Name: "output", Value: "text", EnvVars: []string{"COORD_OUTPUT"},
				Usage: "output format: text or json (one object per line)"},
			&cli.StringFlag{Name: "namespace", Value: coord.DefaultNamespace, EnvVars: []string{"COORD_NAMESPACE"},
				Usage: "namespace every key lives under"},
		},
		Commands: []*cli.Command{
			lockCommand(st),
			electCommand(st),
			leaderCommand(st),
			barrierCommand(st),
			devCommand(st),
			demoCommand(st),
		},
		HideVersion:    true,
		Writer:         st.stdout,
		ErrWriter:      st.stderr,
		ExitErrHandler: func(*cli.Context, error) {}, // run maps errors to exit codes
		Before: func(c *cli.Context) error {
			_, err := st.globals(c)
			return err
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usage("run 'coordctl --help' for the list of commands", "unknown command %q", c.Args().First())
			}
			_ = cli.ShowAppHelp(c)
			return usage("", "no command given")
		},
	}
	app.OnUsageError = onUsageError
	setUsageErrors(app.Commands)
	return app
}

func onUsageError(c *cli.Context, err error, _ bool) error {
	name := "coordctl"
	if c.Command != nil && c.Command.HelpName != "" {
		name = c.Command.HelpName
	}
	return usage("run '"+name+" --help'", "%v", err)
}

func setUsageErrors(cmds []*cli.Command) {
	for _, cmd := range cmds {
		cmd.OnUsageError = onUsageError
		setUsageErrors(cmd.Subcommands)
	}
}

// globals are the resolved global flags.
type globals struct {
	backend     string
	ttl         time.Duration
	dialTimeout time.Duration
	json        bool
	namespace   string
}

func (st *state) globals(c *cli.Context) (globals, error) {
	g := globals{
		backend:     c.String("backend"),
		ttl:         c.Duration("ttl"),
		dialTimeout: c.Duration("dial-timeout"),
		namespace:   c.String("namespace"),
	}
	switch out := c.String("output"); out {
	case "text", "":
	case "json":
		g.json, st.json = true, true
	default:
		return g, usage("use --output text or --output json", "unknown output format %q", out)
	}
	if g.ttl <= 0 {
		return g, usage("give a positive duration, e.g. --ttl 10s", "--ttl %s is not positive", g.ttl)
	}
	if g.dialTimeout <= 0 {
		return g, usage("give a positive duration, e.g. --dial-timeout 5s", "--dial-timeout %s is not positive", g.dialTimeout)
	}
	if err := coord.ValidateNamespace(g.namespace); err != nil {
		return g, usage("choose another --namespace", "%v", err)
	}
	return g, nil
}

// out returns the printer for coordctl's own results (stdout).
func (g globals) out(st *state) *printer { return &printer{json: g.json, w: st.stdout} }

// events returns the printer for progress events: stderr, so that stdout
// stays CMD's. Text mode prints no events.
func (g globals) events(st *state) *printer {
	if !g.json {
		return nil
	}
	return &printer{json: true, w: st.stderr}
}

// prepareArgs splits off "--" and CMD for commands that run one, and moves a
// command's own flags written after its positional arguments in front of
// them, since urfave/cli stops parsing flags at the first positional argument.
func (st *state) prepareArgs(app *cli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	i := 1
	for i < len(args) && isFlagToken(args[i]) {
		if takesValue(app.Flags, args[i]) {
			i++
		}
		i++
	}
	if i >= len(args) {
		return args
	}
	head := append([]string(nil), args[:i]...)
	cmds, path := app.Commands, ""
	var cmd *cli.Command
	for i < len(args) {
		c := findCommand(cmds, args[i])
		if c == nil {
			break
		}
		cmd = c
		path = strings.TrimSpace(path + " " + c.Name)
		head = append(head, args[i])
		i++
		cmds = c.Subcommands
		if len(cmds) == 0 {
			break
		}
	}
	rest := args[i:]
	if cmd == nil {
		return args
	}
	if runsCMD[path] {
		for j, a := range rest {
			if a == "--" {
				st.sawDash = true
				st.cmd = append([]string(nil), rest[j+1:]...)
				rest = rest[:j]
				break
			}
		}
	}
	var flags, pos []string
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" { // not a CMD command: leave the rest to urfave/cli
			pos = append(pos, rest[j:]...)
			break
		}
		if isFlagToken(a) && definesFlag(cmd.Flags, a) {
			flags = append(flags, a)
			if takesValue(cmd.Flags, a) && j+1 < len(rest) {
				j++
				flags = append(flags, rest[j])
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(append(head, flags...), pos...)
}

func isFlagToken(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }

func flagName(a string) (name string, hasValue bool) {
	name = strings.TrimLeft(a, "-")
	name, _, hasValue = strings.Cut(name, "=")
	return name, hasValue
}

func findFlag(flags []cli.Flag, a string) cli.Flag {
	name, _ := flagName(a)
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func definesFlag(flags []cli.Flag, a string) bool {
	name, _ := flagName(a)
	return findFlag(flags, a) != nil || name == "help" || name == "h"
}

// takesValue reports whether a flag token consumes the next argument.
func takesValue(flags []cli.Flag, a string) bool {
	if _, inline := flagName(a); inline {
		return false
	}
	f := findFlag(flags, a)
	if f == nil {
		return false
	}
	_, isBool := f.(*cli.BoolFlag)
	return !isBool
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
