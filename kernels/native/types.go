package native

import (
	"fmt"

	"github.com/gomps/gomps/weights"
)

// Precision is a compute precision (gomps_precision).
type Precision int32

// The precisions of the ABI, equal to GOMPS_PRECISION_* (checked at compile
// time in the cgo build).
const (
	PrecisionF32  Precision = 0 // exact default everywhere
	PrecisionBF16 Precision = 1 // CPU: bf16 matmuls where bf16 is native
	PrecisionF16  Precision = 2 // Metal: fp16 compute
)

// precisionNames lists every precision's name by value.
var precisionNames = []string{"f32", "bf16", "f16"}

func (p Precision) String() string {
	if p >= 0 && int(p) < len(precisionNames) {
		return precisionNames[p]
	}
	return fmt.Sprintf("precision(%d)", int32(p))
}

// ParsePrecision returns the precision named s ("f32", "bf16", "f16").
func ParsePrecision(s string) (Precision, bool) {
	for i, n := range precisionNames {
		if n == s {
			return Precision(i), true
		}
	}
	return 0, false
}

// PrecisionNames returns the name of every precision the ABI defines, in
// value order.
func PrecisionNames() []string { return append([]string(nil), precisionNames...) }

// precisionsOf lists the members of a precision set in value order.
func precisionsOf(set uint32) []Precision {
	var out []Precision
	for p := range 32 {
		if set&(1<<p) != 0 {
			out = append(out, Precision(p))
		}
	}
	return out
}

// Capabilities is what a backend can do on this machine (gomps_capabilities),
// for the thread budget it was asked about.
type Capabilities struct {
	// Unusable is "" when models can load here; else why none can.
	Unusable string
	// Precisions run natively here; any other is refused at load.
	Precisions []Precision
	// Padded: a forward computes every row at the padded length (static
	// shapes), so padding costs as much as real tokens; false: only real
	// tokens are computed.
	Padded bool
	// MaxBatch and MaxSeq are the largest options a load accepts (MaxSeq 0:
	// the model's max positions bound it).
	MaxBatch, MaxSeq int
	// Instances and Threads are the preferred contexts and threads per
	// context for the budget asked.
	Instances, Threads int
	// MemoryInUse is the bytes the backend holds now for its live models and
	// contexts; -1 if unknown.
	MemoryInUse int64
	// ISA is the instruction set or device the backend runs on ("" if known
	// only once a model loads).
	ISA string
}

// Options are fixed at load (gomps_model_options); zero fields mean the
// backend's defaults.
type Options struct {
	Precision Precision
	MaxBatch  int    // rows per forward; 0 = 64
	MaxSeq    int    // tokens per row incl. specials; 0 = the model's max positions
	Buckets   string // backend-specific shape buckets "BxS,..." ("" = default)
}

// ModelInfo is what a loaded model is (gomps_model_info).
type ModelInfo struct {
	Backend, ISA string
	Arch         string         // the model family from the file: "bert"
	Name         string         // the model name recorded in the file
	SourceSHA256 [32]byte       // of the source model.safetensors (zeros if unknown)
	NumLabels    int            // logits per row a forward writes
	Config       weights.Config // the model's shape
	Precision    Precision      // in force
	MaxBatch     int            // as resolved from the options
	MaxSeq       int            // as resolved from the options
	// WeightsBytes is the weights the model keeps for its forward (packed or
	// converted copies plus tensors read in place from the file).
	WeightsBytes int64
	// ContextBytes is the scratch one context allocates (address space).
	ContextBytes int64
}
