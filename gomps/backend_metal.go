//go:build cgo && darwin

package gomps

// The Metal backend (Objective-C + MPSGraph) implements kernels/gomps.h;
// importing it links its gomps_* symbols into the program.
import _ "github.com/gomps/gomps/metal"

func backendInfo() (BackendInfo, error) {
	return BackendInfo{Name: "metal", Precisions: []string{"f32", "f16"}}, nil
}
