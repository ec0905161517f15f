package main

import (
	"errors"
	"fmt"
	"io"
)

// Exit codes (SPEC §9). A command that runs CMD exits with CMD's own code.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitNotAcquired = 3
	exitLost        = 4
)

// exitErr is an error that decides coordctl's exit code. Its message reads
// "<what went wrong>: <what to do>"; main prefixes "coordctl: ". A zero-length
// msg means "exit with code, print nothing" (CMD's own exit code).
type exitErr struct {
	code int
	msg  string
	hint string
	err  error
}

func (e *exitErr) Error() string {
	s := e.msg
	if e.hint != "" {
		s += ": " + e.hint
	}
	return s
}

func (e *exitErr) Unwrap() error { return e.err }

// fail is an operational error (exit 1). cause is appended to msg.
func fail(cause error, hint, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if cause != nil {
		msg += ": " + cause.Error()
	}
	return &exitErr{code: exitError, msg: msg, hint: hint, err: cause}
}

// usage is a command-line usage error (exit 2).
func usage(hint, format string, args ...any) error {
	return &exitErr{code: exitUsage, msg: fmt.Sprintf(format, args...), hint: hint}
}

// withCode returns an error that makes coordctl exit with code, printing msg
// and hint unless msg is empty.
func withCode(code int, cause error, hint, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if cause != nil && msg != "" {
		msg += ": " + cause.Error()
	}
	return &exitErr{code: code, msg: msg, hint: hint, err: cause}
}

// exitStatus reports err on stderr in the form "coordctl: <what>: <hint>"
// (with asJSON, as {"event":"error","message":…,"code":…}) and returns the
// exit code.
func exitStatus(stderr io.Writer, err error, asJSON bool) int {
	if err == nil {
		return exitOK
	}
	code, msg := exitError, err.Error()
	var e *exitErr
	if errors.As(err, &e) {
		code, msg = e.code, e.msg
		if msg != "" {
			msg = e.Error()
		}
	}
	if msg == "" {
		return code
	}
	p := &printer{json: asJSON, w: stderr}
	p.emit("coordctl: "+msg, event{Event: "error", Message: "coordctl: " + msg, Code: &code})
	return code
}
