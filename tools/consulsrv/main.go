// Command consulsrv is a real Consul agent (github.com/hashicorp/consul v1.16.3,
// MPL-2.0) built from the Go module proxy, for coord's tests on machines whose
// package archive has no Consul. It accepts the same arguments as `consul`,
// but registers only the agent command: `consulsrv agent -dev ...`.
package main

import (
	"fmt"
	"io"
	"log"
	"os"

	"github.com/hashicorp/consul/command/agent"
	ccli "github.com/hashicorp/consul/command/cli"
	mcli "github.com/mitchellh/cli"
)

func main() {
	log.SetOutput(io.Discard)
	ui := &ccli.BasicUI{BasicUi: mcli.BasicUi{Writer: os.Stdout, ErrorWriter: os.Stderr}}
	c := &mcli.CLI{
		Args: os.Args[1:],
		Commands: map[string]mcli.CommandFactory{
			"agent": func() (mcli.Command, error) { return agent.New(ui), nil },
		},
		Name:        "consulsrv",
		HelpFunc:    mcli.BasicHelpFunc("consulsrv"),
		HelpWriter:  os.Stdout,
		ErrorWriter: os.Stderr,
	}
	code, err := c.Run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "consulsrv: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}
