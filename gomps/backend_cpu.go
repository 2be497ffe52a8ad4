//go:build cgo && !darwin

package gomps

// The CPU backend (C over oneDNN) implements kernels/gomps.h; importing it
// links its gomps_* symbols into the program.
import _ "github.com/gomps/gomps/kernels/cpu"
