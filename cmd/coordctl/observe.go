package main

import (
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/coordkit/coord"
	"github.com/coordkit/coord/recipes/election"
)

// leaderLine is how `elect --observe` and `leader` print a leader.
type leaderLine struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Token  uint64 `json:"token"`
	Leader bool   `json:"leader"`
}

func newLeaderLine(name string, l election.Leader) leaderLine {
	if !l.Elected() {
		return leaderLine{Name: name}
	}
	return leaderLine{Name: name, Value: string(l.Value), Token: uint64(l.Token), Leader: true}
}

func (l leaderLine) text() string {
	if !l.Leader {
		return "no leader name=" + l.Name
	}
	return "leader name=" + l.Name + " token=" + strconv.FormatUint(l.Token, 10) + " value=" + textValue(l.Value)
}

// textValue prints v as is when it is one plain word, else Go-quoted, so a
// text line always splits into its key=value fields.
func textValue(v string) string {
	if !utf8.ValidString(v) || strings.ContainsAny(v, `"'\=`) ||
		strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		return strconv.Quote(v)
	}
	return v
}

// runObserve prints the leader of an election, then each change, until a
// signal (exit 0) or an error (exit 1).
func (st *state) runObserve(c *cli.Context) error {
	g, err := st.globals(c)
	if err != nil {
		return err
	}
	name, err := electionName(c, "elect --observe", electUsage)
	if err != nil {
		return err
	}
	switch {
	case st.sawDash:
		return usage(electUsage, "elect: --observe runs no CMD")
	case c.IsSet("value"):
		return usage(electUsage, "elect: --observe does not campaign: drop --value")
	}
	k := catchSignals(c.Context)
	defer k.close()
	cn, err := st.connect(g, k, false, "")
	if err != nil {
		if _, ok := k.interrupt(); ok {
			return nil
		}
		return err
	}
	defer cn.close(g, c.Context)
	o, err := election.Observe(k.ctx, cn.client, name)
	if err != nil {
		return fail(err, "", "cannot observe election %q", name)
	}
	defer o.Stop()
	out := g.out(st)
	var last *leaderLine
	for {
		select {
		case l := <-o.C():
			line := newLeaderLine(name, l)
			if last != nil && *last == line {
				continue // the same state reported again
			}
			last = &line
			out.emit(line.text(), line)
		case <-o.Done():
			if _, ok := k.interrupt(); ok {
				return nil
			}
			return fail(o.Err(), backendHint, "stopped observing election %q", name)
		}
	}
}

// runLeader prints the current leader; exit 3 when there is none.
func (st *state) runLeader(c *cli.Context) error {
	g, err := st.globals(c)
	if err != nil {
		return err
	}
	name, err := electionName(c, "leader", "usage: coordctl leader NAME")
	if err != nil {
		return err
	}
	k := catchSignals(c.Context)
	defer k.close()
	cn, err := st.connect(g, k, false, "leader not read")
	if err != nil {
		return err
	}
	defer cn.close(g, c.Context)
	l, err := election.LeaderOf(k.ctx, cn.client, name)
	switch {
	case errors.Is(err, coord.ErrNoLeader):
		line := newLeaderLine(name, election.Leader{})
		g.out(st).emit(line.text(), line)
		return withCode(exitNotAcquired, nil, "", "")
	case err != nil:
		if intr, ok := k.interrupt(); ok {
			return withCode(exitNotAcquired, nil, "", "leader of election %q not read: %s", name, intr.Error())
		}
		return fail(err, backendHint, "cannot read the leader of election %q", name)
	}
	line := newLeaderLine(name, l)
	g.out(st).emit(line.text(), line)
	return nil
}
