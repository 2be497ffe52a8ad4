//go:build cgo && darwin

package gomps

// The Metal backend (Objective-C + MPSGraph) implements kernels/gomps.h;
// importing it links its gomps_* symbols into the program.
import _ "github.com/gomps/gomps/metal"
