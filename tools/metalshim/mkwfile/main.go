// Command mkwfile writes a small synthetic native weights file: the
// weightstest tiny model (2 layers, hidden 32, vocabulary 64) converted by
// weights.Convert. tools/check-metal.sh uses it to check that the
// backends' shared C reader (kernels/wfile/gomps-wfile.c) accepts what the Go
// writer writes, in both dtypes.
//
//	go run ./tools/metalshim/mkwfile OUT.gomps f32|f16
package main

import (
	"fmt"
	"os"

	"github.com/gomps/gomps/weights"
	"github.com/gomps/gomps/weights/weightstest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkwfile:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: mkwfile OUT f32|f16")
	}
	dt, err := weights.ParseDType(args[1])
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "mkwfile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if _, err := weightstest.WriteHFDir(dir, weightstest.Options{Config: weightstest.TinyConfig(), Seed: 6}); err != nil {
		return err
	}
	_, err = weights.Convert(dir, args[0], weights.ConvertOptions{DType: dt, Name: "gomps/metalshim-tiny"})
	return err
}
