//go:build cgo && !darwin

package gomps

// The CPU backend (C over oneDNN) implements kernels/gomps.h; importing it
// links its gomps_* symbols into the program.
import "github.com/gomps/gomps/kernels/cpu"

func backendInfo() (BackendInfo, error) {
	isa, precisions, err := cpu.Capabilities()
	bi := BackendInfo{Name: "cpu", ISA: isa, Precisions: precisions}
	if ce, ok := err.(*cpu.Error); ok {
		return bi, &Error{Code: Code(ce.Code), Op: "backend", Msg: ce.Msg}
	}
	return bi, err
}
