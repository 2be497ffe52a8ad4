package main

import (
	"bytes"
	"testing"

	"github.com/urfave/cli/v2"
)

// runApp runs a gomps app made of cmds (fresh ones: urfave/cli flags keep
// state between runs) with args after the program name, and returns what it
// printed on stdout and stderr.
func runApp(t *testing.T, cmds []*cli.Command, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	app := newApp()
	app.Commands = cmds
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err = run(app, append([]string{"gomps"}, args...))
	return out.String(), errOut.String(), err
}
