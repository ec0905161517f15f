package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// child is a CMD that coordctl runs while it owns something (a lock, a
// leadership).
//
// When stdin is not a terminal, CMD runs in its own process group and every
// signal coordctl sends (forwarded SIGINT/SIGTERM/SIGHUP, SIGTERM and SIGKILL
// on loss) goes to that whole group, so a shell CMD's children stop too. When
// stdin is a terminal, CMD stays in coordctl's (foreground) process group so
// it can read the terminal; the terminal's Ctrl-C then reaches CMD directly,
// coordctl does not forward SIGINT a second time, and coordctl's signals go
// to CMD's process only.
//
// CMD gets SIGKILL if coordctl itself dies (Linux parent-death signal): a
// CMD must never keep running unprotected after its owner is gone. Only CMD's
// own process gets it; processes CMD started in the background survive it.
type child struct {
	cmd   *exec.Cmd
	group bool
	done  chan struct{}
	state *os.ProcessState
	err   error
}

// startChild starts argv with env added to coordctl's environment and
// coordctl's stdio.
func startChild(argv, env []string, stdout, stderr io.Writer) (*child, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	ch := &child{cmd: cmd, group: !isTerminal(os.Stdin), done: make(chan struct{})}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: ch.group, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		ch.err = cmd.Wait()
		ch.state = cmd.ProcessState
		close(ch.done)
	}()
	return ch, nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// pid is CMD's process ID.
func (c *child) pid() int { return c.cmd.Process.Pid }

// forward passes a signal coordctl received on to CMD. With a terminal,
// SIGINT is not forwarded: the terminal already sent it to CMD.
func (c *child) forward(sig os.Signal) {
	if !c.group && sig == syscall.SIGINT {
		return
	}
	if s, ok := sig.(syscall.Signal); ok {
		c.signal(s)
	}
}

// signal sends sig to CMD's process group (or process, with a terminal).
func (c *child) signal(sig syscall.Signal) {
	select {
	case <-c.done:
		return
	default:
	}
	if c.group {
		_ = syscall.Kill(-c.pid(), sig)
		return
	}
	_ = syscall.Kill(c.pid(), sig)
}

// exitCode is CMD's exit code, 128+N when it died of signal N (as shells
// report it). Valid once done is closed.
func (c *child) exitCode() int {
	if c.state == nil {
		return exitError
	}
	if ws, ok := c.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return c.state.ExitCode()
}

// describe says how CMD ended, for messages.
func (c *child) describe() string {
	if c.state == nil {
		return fmt.Sprintf("%v", c.err)
	}
	return c.state.String()
}
