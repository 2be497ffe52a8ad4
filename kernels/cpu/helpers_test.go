package cpu

import (
	"testing"

	"github.com/gomps/gomps/kernels/cpu/cputest"
	"github.com/gomps/gomps/kernels/cpu/isaexpect"
)

// thisLevel is the expectation for the ISA oneDNN runs at in this process
// (see cputest.Level).
func thisLevel(t testing.TB) isaexpect.Level { return cputest.Level(t, OneDNNISA()) }
