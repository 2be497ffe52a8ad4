// Package cpu is the CPU backend of gomps: C behind the native ABI
// (kernels/gomps.h) with matrix products through oneDNN 2.x (Debian
// libdnnl-dev). cgo compiles its C files; importing the package links them
// into the program, where the one ABI symbol they export,
// gomps_backend_cpu, is called by the binding (package kernels/native),
// which imports this package for that.
//
// The Go API here is test-facing and below the ABI: the per-op functions of
// ops.h and the fast kernels outside a model (ops.go), the kernel
// benchmark (kbench.go) and oneDNN's effective ISA. Models load through
// kernels/native.
package cpu

/*
#cgo CFLAGS: -O3 -std=gnu11 -fopenmp -Wall -Wextra -Wno-unused-parameter
#cgo LDFLAGS: -ldnnl -lm -fopenmp
#include <stdlib.h>
#include "internal.h"

static const char *cpu_onednn_isa(void) { return cpu_isa_name(dnnl_get_effective_cpu_isa()); }
*/
import "C"

import (
	"fmt"

	// the native weights reader (gomps_wfile_open), compiled by cgo there
	_ "github.com/gomps/gomps/kernels/wfile"
)

// Status codes of the native ABI, as the op-level functions return them.
const (
	StatusOK          = int(C.GOMPS_OK)
	StatusInvalidArg  = int(C.GOMPS_ERR_INVALID_ARG)
	StatusOOM         = int(C.GOMPS_ERR_OOM)
	StatusIO          = int(C.GOMPS_ERR_IO)
	StatusFormat      = int(C.GOMPS_ERR_FORMAT)
	StatusUnsupported = int(C.GOMPS_ERR_UNSUPPORTED)
	StatusDevice      = int(C.GOMPS_ERR_DEVICE)
	StatusInternal    = int(C.GOMPS_ERR_INTERNAL)
)

// Precisions of the native ABI.
const (
	PrecisionF32  = int(C.GOMPS_PRECISION_F32)
	PrecisionBF16 = int(C.GOMPS_PRECISION_BF16)
)

// Error is a failed op-level call (ops.go, kbench.go): its status code and
// the backend's text. Model-level calls go through kernels/native.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (status %d)", e.Msg, e.Code) }

// OneDNNISA is oneDNN's own effective ISA, read without the backend's checks
// (for tests, which take their expectations from it).
func OneDNNISA() string { return C.GoString(C.cpu_onednn_isa()) }
