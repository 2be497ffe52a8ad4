// Package isaexpect is what the test suites expect of the CPU backend under
// each effective ISA (oneDNN's, which ONEDNN_MAX_CPU_ISA caps): which
// precisions must run, which must be refused and with which text, and which
// attention kernel a context runs. It is written from what each instruction
// set has, never from the backend's own support checks, so a wrong check in
// the backend fails the tests instead of steering them.
package isaexpect

import "fmt"

// Attention kernels, by the names GOMPS_CPU_ATTENTION takes.
const (
	AttentionSGEMM  = "sgemm"
	AttentionAVX512 = "avx512"
	AttentionAMX    = "amx"
	// AttentionAVX512BF16 is the vdpbf16ps kernel (bf16 precision, AVX512-BF16).
	AttentionAVX512BF16 = "avx512bf16"
)

// Level is one effective ISA.
type Level struct {
	ISA    string // oneDNN's name, as Info reports it ("avx2", "avx512_core_bf16", ...)
	Cap    string // the ONEDNN_MAX_CPU_ISA value that caps a larger CPU to it
	AVX512 bool   // our AVX-512 kernels run
	BF16   bool   // bf16 precision must load and run (native bf16: AVX512-BF16 or AMX)
	AMX    bool   // the AMX attention kernel runs in bf16 precision
}

// Levels are the ISAs gomps runs on, lowest first.
var Levels = []Level{
	{ISA: "avx2", Cap: "AVX2"},
	{ISA: "avx2_vnni", Cap: "AVX2_VNNI"},
	{ISA: "avx512_core", Cap: "AVX512_CORE", AVX512: true},
	{ISA: "avx512_core_vnni", Cap: "AVX512_CORE_VNNI", AVX512: true},
	{ISA: "avx512_core_bf16", Cap: "AVX512_CORE_BF16", AVX512: true, BF16: true},
	{ISA: "avx512_core_amx", Cap: "AVX512_CORE_AMX", AVX512: true, BF16: true, AMX: true},
}

// For returns the level of an effective ISA name.
func For(isa string) (Level, error) {
	for _, l := range Levels {
		if l.ISA == isa {
			return l, nil
		}
	}
	return Level{}, fmt.Errorf("isaexpect: %q is not an ISA gomps runs on", isa)
}

// Precisions are the precisions that must run at this level.
func (l Level) Precisions() []string {
	if l.BF16 {
		return []string{"f32", "bf16"}
	}
	return []string{"f32"}
}

// BF16Refusal is the text a bf16 load must fail with where BF16 is false.
func (l Level) BF16Refusal() string {
	return "precision bf16 needs AMX or AVX512-BF16; this CPU (" + l.ISA + ") runs f32"
}

// Attention is the kernel a context runs for heads of 32 in precision
// ("f32" or "bf16") when GOMPS_CPU_ATTENTION is env ("" = the default): AMX
// only in bf16 where it runs; the vdpbf16ps kernel only in bf16 where bf16 is
// native (by default where AMX is not); sgemm when asked for; else the
// AVX-512 kernel where it runs, else sgemm.
func (l Level) Attention(env, precision string) string {
	switch {
	case (env == "" || env == AttentionAMX) && precision == "bf16" && l.AMX:
		return AttentionAMX
	case (env == "" || env == AttentionAVX512BF16) && precision == "bf16" && l.BF16:
		return AttentionAVX512BF16
	case env == AttentionSGEMM || !l.AVX512:
		return AttentionSGEMM
	}
	return AttentionAVX512
}

// Below lists l and the levels under it in Levels' order: the caps to try on
// a CPU whose best level is l. Every one of them gives its own ISA there,
// except AVX2_VNNI, which gives avx2 on CPUs without AVX-VNNI.
func (l Level) Below() []Level {
	var out []Level
	for _, m := range Levels {
		out = append(out, m)
		if m.ISA == l.ISA {
			break
		}
	}
	return out
}

// BadCaps are ONEDNN_MAX_CPU_ISA values a model load must refuse, with a
// piece of the text the refusal must say.
var BadCaps = map[string]string{
	"AVX":      "ONEDNN_MAX_CPU_ISA=AVX is below AVX2",
	"sse41":    "ONEDNN_MAX_CPU_ISA=sse41 is below AVX2",
	"AVX512":   "ONEDNN_MAX_CPU_ISA=AVX512 is not an ISA level",
	"avx3":     "ONEDNN_MAX_CPU_ISA=avx3 is not an ISA level",
	"AVX2,AVX": "ONEDNN_MAX_CPU_ISA=AVX2,AVX is not an ISA level",
}
