// Command gomps scores (query, passage) pairs with a MiniLM cross-encoder.
//
// Each subcommand lives in its own file and registers itself in init with
// register, so commands can be added without touching this file.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/urfave/cli/v2"
)

var commands []*cli.Command

// precisionUsage is the --precision flag's text, shared by every command.
const precisionUsage = "f32 (exact), bf16 (CPU with native bf16: AMX or AVX512-BF16; gomps version lists " +
	"what this CPU runs) or f16 (Metal)"

// threadsUsage is the --threads flag's text where 0 is the library's default.
const threadsUsage = "native threads over all instances (0 = the CPUs this process may use: its affinity " +
	"mask, bounded by its cgroup's CPU quota)"

// register adds a subcommand; called from each command file's init.
func register(c *cli.Command) { commands = append(commands, c) }

func newApp() *cli.App {
	sort.Slice(commands, func(i, j int) bool { return commands[i].Name < commands[j].Name })
	return &cli.App{
		Name:                 "gomps",
		Usage:                "score (query, passage) pairs with a MiniLM cross-encoder",
		Commands:             commands,
		EnableBashCompletion: true,
		// Errors are printed once, by main, as a one-line cause.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "gomps: %v\n", err)
		code := 1
		var ec cli.ExitCoder
		if errors.As(err, &ec) && ec.ExitCode() != 0 {
			code = ec.ExitCode()
		}
		os.Exit(code)
	}
}
