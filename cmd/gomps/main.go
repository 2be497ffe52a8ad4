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

	"github.com/gomps/gomps/gomps"
)

var commands []*cli.Command

// precisionUsage is the --precision flag's text, shared by every command.
const precisionUsage = "f32 (exact), bf16 (CPU with native bf16: AMX or AVX512-BF16; gomps version lists " +
	"what this CPU runs) or f16 (Metal)"

// threadsUsage is the --threads flag's text where 0 is the library's default.
const threadsUsage = "native threads over all instances (0 = the CPUs this process may use: its affinity " +
	"mask, bounded by its cgroup's CPU quota)"

// intOption is an int flag that maps to a library option when set (> 0).
type intOption struct {
	flag string
	opt  func(int) gomps.Option
}

// engineIntOptions are the int flags score, bench and serve share.
var engineIntOptions = []intOption{{"threads", gomps.WithThreads}, {"instances", gomps.WithInstances},
	{"max-length", gomps.WithMaxLength}, {"max-batch", gomps.WithMaxBatch}}

// appendIntOptions appends the option of each flag of flags that is set (0
// leaves the library's default); a negative value is an error naming the
// flag.
func appendIntOptions(opts []gomps.Option, c *cli.Context, flags []intOption) ([]gomps.Option, error) {
	for _, f := range flags {
		switch n := c.Int(f.flag); {
		case n < 0:
			return nil, fmt.Errorf("--%s %d is negative", f.flag, n)
		case n > 0:
			opts = append(opts, f.opt(n))
		}
	}
	return opts, nil
}

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

// commandError is a command's failure: its text is "<command>: <err>". The
// commands' own errors do not name the command; the library's name no
// package.
type commandError struct {
	command string
	err     error
}

func (e *commandError) Error() string { return e.command + ": " + e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

// run runs app with args (the program name first); an error of a command
// names the command, once.
func run(app *cli.App, args []string) error {
	err := app.Run(args)
	if err == nil || len(args) < 2 {
		return err
	}
	if cmd := app.Command(args[1]); cmd != nil {
		return &commandError{command: cmd.Name, err: err}
	}
	return err
}

// errorLine is what main prints for an error: "gomps: <command>: <cause>".
func errorLine(err error) string { return "gomps: " + err.Error() }

// loggedError is an error a command has already written to its log (as
// JSON, say): main only sets the exit status.
type loggedError struct{ error }

func (e loggedError) Unwrap() error { return e.error }

func main() {
	if err := run(newApp(), os.Args); err != nil {
		var logged loggedError
		if !errors.As(err, &logged) {
			fmt.Fprintln(os.Stderr, errorLine(err))
		}
		code := 1
		var ec cli.ExitCoder
		if errors.As(err, &ec) && ec.ExitCode() != 0 {
			code = ec.ExitCode()
		}
		os.Exit(code)
	}
}
