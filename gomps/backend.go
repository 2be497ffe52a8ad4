package gomps

import "github.com/gomps/gomps/gomps/internal/cpus"

// BackendInfo is what the native backend linked into this program runs on
// this machine.
type BackendInfo struct {
	Name string // "cpu", "metal"
	// ISA is the instruction set the backend runs on: on the CPU oneDNN's
	// effective ISA ("avx2", "avx512_core_bf16", ...), which ONEDNN_MAX_CPU_ISA
	// caps for every kernel; "" where it is known only once a model is loaded
	// (Metal: Info().ISA names the GPU).
	ISA string
	// Precisions are the precisions that run natively here ("f32", "bf16",
	// "f16"); any other is refused at Open, saying why.
	Precisions []string
}

// AvailableCPUs is the default thread budget (WithThreads): the CPUs this
// process may use, its affinity mask bounded by its cgroup's CPU quota
// (rounded up). Read once per process.
func AvailableCPUs() int { return cpus.Available() }

// Backend reports the native backend of this program. A non-nil error says
// why no model can load here (built without cgo; on the CPU a level of
// ONEDNN_MAX_CPU_ISA that oneDNN does not know or that is below AVX2, or a
// CPU without AVX2); the BackendInfo is filled as far as known.
func Backend() (BackendInfo, error) { return backendInfo() }
