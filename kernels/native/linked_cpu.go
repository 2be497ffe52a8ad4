//go:build cgo && !darwin

package native

/*
#include "gomps.h"
*/
import "C"

// The CPU backend (C over oneDNN); importing it links its C code.
import _ "github.com/gomps/gomps/kernels/cpu"

// linked returns the tables of the backends built into this program, in
// preference order.
func linked() []*C.gomps_backend { return []*C.gomps_backend{C.gomps_backend_cpu()} }
