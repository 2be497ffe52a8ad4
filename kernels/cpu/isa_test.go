package cpu

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/cpu/isaexpect"
)

var (
	precisionByName = map[string]int{"f32": PrecisionF32, "bf16": PrecisionBF16}
	attentionName   = map[int]string{AttentionSGEMM: isaexpect.AttentionSGEMM,
		AttentionAVX512: isaexpect.AttentionAVX512, AttentionAMX: isaexpect.AttentionAMX,
		AttentionAVX512BF16: isaexpect.AttentionAVX512BF16}
)

// thisLevel is the expectation for the ISA oneDNN runs at in this process.
// Where GOMPS_EXPECT_ISA is set (a capped CI stage, a child of
// TestISACeilings: one ISA or several separated by commas), the ISA must be
// one of those.
func thisLevel(t testing.TB) isaexpect.Level {
	t.Helper()
	isa := OneDNNISA()
	if want := os.Getenv("GOMPS_EXPECT_ISA"); want != "" {
		require.Contains(t, strings.Split(want, ","), isa,
			"effective ISA under ONEDNN_MAX_CPU_ISA=%q", os.Getenv("ONEDNN_MAX_CPU_ISA"))
	}
	l, err := isaexpect.For(isa)
	require.NoError(t, err)
	return l
}

// TestISAExpectations: at this process's ISA, the backend reports it, runs
// exactly the table's precisions (refusing the others with the table's
// text), and picks the table's attention kernel for every precision and
// GOMPS_CPU_ATTENTION. With GOMPS_EXPECT_REFUSAL set (a child under a bad
// ONEDNN_MAX_CPU_ISA) it checks instead that every model load is refused
// with that text.
func TestISAExpectations(t *testing.T) {
	tm := randomModel(tinyConfig(false), 53)
	path := tm.write(t, t.TempDir())
	t.Setenv("GOMPS_CPU_PLAIN", "")
	if want := os.Getenv("GOMPS_EXPECT_REFUSAL"); want != "" {
		_, _, err := Capabilities()
		require.Error(t, err)
		assert.Contains(t, errMsg(err), want)
		for _, p := range []int{PrecisionF32, PrecisionBF16} {
			_, err := OpenModel(path, p, 2, 16)
			assert.Equal(t, StatusUnsupported, statusOf(err), "%v", err)
			assert.Contains(t, errMsg(err), want)
		}
		return
	}
	l := thisLevel(t)
	t.Logf("effective ISA %s", l.ISA)
	isa, precs, err := Capabilities()
	require.NoError(t, err)
	assert.Equal(t, l.ISA, isa, "Capabilities' ISA")
	assert.Equal(t, l.Precisions(), precs, "native precisions")
	for name, p := range precisionByName {
		m, err := OpenModel(path, p, 2, 16)
		if !slices.Contains(l.Precisions(), name) {
			assert.Equal(t, StatusUnsupported, statusOf(err), "precision %s: %v", name, err)
			assert.Equal(t, l.BF16Refusal(), errMsg(err), "precision %s", name)
			continue
		}
		require.NoError(t, err, "precision %s", name)
		in, err := m.Info()
		require.NoError(t, err)
		assert.Equal(t, l.ISA, in.ISA, "Info's ISA")
		m.Close()
	}
	for _, env := range []string{"", "sgemm", "avx512", "amx", "avx512bf16"} {
		t.Setenv("GOMPS_CPU_ATTENTION", env)
		for name, p := range precisionByName {
			assert.Equal(t, l.Attention(env, name), attentionName[AttentionKernel(p, 32)],
				"attention kernel of %s with GOMPS_CPU_ATTENTION=%q", name, env)
		}
	}
}

// TestISACeilings runs TestISAExpectations in a child process under every
// ONEDNN_MAX_CPU_ISA at or below this CPU's level (each child first asserts
// the ISA it got), and under values a load must refuse.
func TestISACeilings(t *testing.T) {
	top := thisLevel(t)
	run := func(t *testing.T, env ...string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestISAExpectations$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "GOMPS_CPU_PLAIN=", "GOMPS_CPU_ATTENTION=", "DNNL_MAX_CPU_ISA=")
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "child output:\n%s", out)
		assert.Contains(t, string(out), "--- PASS: TestISAExpectations", "the child must have run the checks")
	}
	for _, l := range top.Below() {
		t.Run("cap="+l.Cap, func(t *testing.T) {
			want := l.ISA
			if l.ISA == "avx2_vnni" {
				want += ",avx2" // on CPUs without AVX-VNNI
			}
			run(t, "ONEDNN_MAX_CPU_ISA="+l.Cap, "GOMPS_EXPECT_ISA="+want, "GOMPS_EXPECT_REFUSAL=")
		})
	}
	for v, text := range isaexpect.BadCaps {
		t.Run("bad="+v, func(t *testing.T) {
			run(t, "ONEDNN_MAX_CPU_ISA="+v, "GOMPS_EXPECT_REFUSAL="+text, "GOMPS_EXPECT_ISA=")
		})
	}
	t.Run("dnnl-name", func(t *testing.T) {
		run(t, "ONEDNN_MAX_CPU_ISA=", "DNNL_MAX_CPU_ISA=AVX2", "GOMPS_EXPECT_ISA=avx2", "GOMPS_EXPECT_REFUSAL=")
	})
}
