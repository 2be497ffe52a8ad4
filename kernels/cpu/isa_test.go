package cpu_test

import (
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/cpu"
	"github.com/gomps/gomps/kernels/cpu/cputest"
	"github.com/gomps/gomps/kernels/cpu/isaexpect"
	"github.com/gomps/gomps/kernels/native"
)

// TestISAExpectations: at this process's ISA, the backend's capability
// answer reports it and exactly the table's precisions, it runs those
// (refusing the others with the table's text), and picks the table's
// attention kernel for every precision and GOMPS_CPU_ATTENTION. With
// GOMPS_EXPECT_REFUSAL set (a child under a bad ONEDNN_MAX_CPU_ISA) it
// checks instead that the capability answer says unusable, and every model
// load is refused, with that text.
func TestISAExpectations(t *testing.T) {
	tm := cputest.RandomModel(tinyConfig(false), 53)
	path := tm.Write(t, t.TempDir())
	t.Setenv("GOMPS_CPU_PLAIN", "")
	if want := os.Getenv("GOMPS_EXPECT_REFUSAL"); want != "" {
		c, err := backend(t).Capabilities(2)
		require.NoError(t, err)
		assert.Contains(t, c.Unusable, want)
		assert.Empty(t, c.Precisions, "no precision runs where no model loads")
		for _, p := range []native.Precision{native.PrecisionF32, native.PrecisionBF16} {
			_, err := openModel(path, p, 2, 16)
			assert.Equal(t, native.CodeUnsupported, statusOf(err), "%v", err)
			assert.Contains(t, errMsg(err), want)
		}
		return
	}
	l := thisLevel(t)
	t.Logf("effective ISA %s", l.ISA)
	c, err := backend(t).Capabilities(2)
	require.NoError(t, err)
	assert.Empty(t, c.Unusable)
	assert.Equal(t, l.ISA, c.ISA, "Capabilities' ISA")
	var precs []string
	for _, p := range c.Precisions {
		precs = append(precs, p.String())
	}
	assert.Equal(t, l.Precisions(), precs, "native precisions")
	for name, p := range precisionByName {
		m, err := openModel(path, p, 2, 16)
		if !slices.Contains(l.Precisions(), name) {
			assert.Equal(t, native.CodeUnsupported, statusOf(err), "precision %s: %v", name, err)
			assert.Equal(t, l.BF16Refusal(), errMsg(err), "precision %s", name)
			continue
		}
		require.NoError(t, err, "precision %s", name)
		assert.Equal(t, l.ISA, m.Info().ISA, "Info's ISA")
		m.Close()
	}
	for _, env := range []string{"", "sgemm", "avx512", "amx", "avx512bf16"} {
		t.Setenv("GOMPS_CPU_ATTENTION", env)
		for name, p := range precisionByName {
			assert.Equal(t, l.Attention(env, name), attentionName[cpu.AttentionKernel(int(p), 32)],
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
