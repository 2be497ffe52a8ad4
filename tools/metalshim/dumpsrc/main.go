// Command dumpsrc prints the Metal shader library exactly as the backend
// compiles it (package kernels/metal's Source), so Apple's offline compiler
// can check it: the macOS workflow runs
//
//	go run ./tools/metalshim/dumpsrc > gomps.metal
//	xcrun -sdk macosx metal -std=metal3.0 -fno-fast-math -Werror -c gomps.metal
package main

import (
	"fmt"

	kmetal "github.com/gomps/gomps/kernels/metal"
)

func main() { fmt.Print(kmetal.Source()) }
