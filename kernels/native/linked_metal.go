//go:build cgo && darwin

package native

/*
#include "gomps.h"
*/
import "C"

// The Metal backend (Objective-C over MPSGraph); importing it links its
// code and hands it the shader library.
import _ "github.com/gomps/gomps/metal"

// linked returns the tables of the backends built into this program, in
// preference order.
func linked() []*C.gomps_backend { return []*C.gomps_backend{C.gomps_backend_metal()} }
