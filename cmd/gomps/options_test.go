package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/gomps/gomps/gomps"
)

// TestAppendIntOptions: a set flag adds its option, 0 leaves the default,
// a negative value fails naming the flag.
func TestAppendIntOptions(t *testing.T) {
	run := func(args ...string) (int, error) {
		var n int
		var err error
		app := &cli.App{
			Flags: []cli.Flag{&cli.IntFlag{Name: "threads"}, &cli.IntFlag{Name: "instances"}, &cli.IntFlag{Name: "max-length"}, &cli.IntFlag{Name: "max-batch"}},
			Action: func(c *cli.Context) error {
				var opts []gomps.Option
				opts, err = appendIntOptions([]gomps.Option{gomps.WithSigmoid()}, c, engineIntOptions)
				n = len(opts)
				return nil
			},
		}
		require.NoError(t, app.Run(append([]string{"x"}, args...)))
		return n, err
	}
	n, err := run()
	require.NoError(t, err)
	assert.Equal(t, 1, n, "no flag set: only the options given")
	n, err = run("--threads", "2", "--max-batch", "8", "--instances", "0")
	require.NoError(t, err)
	assert.Equal(t, 3, n, "two flags set")
	_, err = run("--threads", "2", "--max-length", "-3")
	assert.EqualError(t, err, "--max-length -3 is negative")
}
