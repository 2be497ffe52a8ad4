package gomps

import (
	"github.com/gomps/gomps/gomps/internal/cpus"
	"github.com/gomps/gomps/kernels/native"
)

// BackendInfo is what a native backend of this program answers when asked
// what it can do on this machine (kernels/gomps.h, capabilities).
type BackendInfo struct {
	Name    string // "cpu", "metal"
	Version string // the backend's own version and what it is built on
	// ISA is the instruction set the backend runs on: on the CPU oneDNN's
	// effective ISA ("avx2", "avx512_core_bf16", ...), which ONEDNN_MAX_CPU_ISA
	// caps for every kernel; "" where it is known only once a model is loaded
	// (Metal: Info().ISA names the GPU).
	ISA string
	// Precisions are the precisions that run natively here ("f32", "bf16",
	// "f16"); any other is refused at Open, saying why.
	Precisions []string
	// Padded: a forward computes every row at the padded length (Metal's
	// static shapes), so the engine cuts batches of closer lengths; false:
	// only real tokens are computed.
	Padded bool
	// MaxBatch and MaxSeq bound WithMaxBatch and WithMaxLength (MaxSeq 0: the
	// model's positions bound it).
	MaxBatch, MaxSeq int
	// Instances and InstanceThreads are the contexts and threads per context
	// Open uses for the thread budget asked about, unless WithInstances is
	// given.
	Instances, InstanceThreads int
	// MemoryInUse is the bytes the backend holds now for every live model
	// and context of this process (CPU: heap; Metal: the device's allocated
	// size); -1 if unknown.
	MemoryInUse int64
}

// AvailableCPUs is the default thread budget (WithThreads): the CPUs this
// process may use, its affinity mask bounded by its cgroup's CPU quota
// (rounded up). Read once per process.
func AvailableCPUs() int { return cpus.Available() }

// Backend reports the default native backend of this program for the
// default thread budget (AvailableCPUs). A non-nil error says why no model
// can load here (built without cgo; on the CPU a level of ONEDNN_MAX_CPU_ISA
// that oneDNN does not know or that is below AVX2, or a CPU without AVX2);
// the BackendInfo is filled as far as known.
func Backend() (BackendInfo, error) {
	b, err := native.Default()
	if err != nil {
		return BackendInfo{}, err
	}
	bi, _, err := askBackend(b, AvailableCPUs())
	return bi, err
}

// DefaultInstances is the instance count Open uses, when WithInstances is
// not given, for a total of threads threads: the default backend's answer
// (on the CPU one single-threaded instance per thread up to 4, then the
// largest count up to 4 that splits the threads evenly; on Metal 1). 1 when
// no backend runs here.
func DefaultInstances(threads int) int {
	b, err := native.Default()
	if err != nil {
		return 1
	}
	bi, _, err := askBackend(b, threads)
	if err != nil {
		return 1
	}
	return bi.Instances
}

// askBackend asks b what it can do for a budget of threads. The error says
// why no model can load (an *Error matching ErrUnsupported).
func askBackend(b *native.Backend, threads int) (BackendInfo, native.Capabilities, error) {
	c, err := b.Capabilities(threads)
	if err != nil {
		return BackendInfo{Name: b.Name(), Version: b.Version()}, c, err
	}
	bi := BackendInfo{
		Name:            b.Name(),
		Version:         b.Version(),
		ISA:             c.ISA,
		Padded:          c.Padded,
		MaxBatch:        c.MaxBatch,
		MaxSeq:          c.MaxSeq,
		Instances:       c.Instances,
		InstanceThreads: c.Threads,
		MemoryInUse:     c.MemoryInUse,
	}
	for _, p := range c.Precisions {
		bi.Precisions = append(bi.Precisions, p.String())
	}
	if c.Unusable != "" {
		return bi, c, &Error{Code: CodeUnsupported, Op: "backend", Msg: c.Unusable}
	}
	return bi, c, nil
}
