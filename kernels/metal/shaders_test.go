package metal

import (
	"io/fs"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSourceInlinesEveryFileOnce(t *testing.T) {
	src := Source()
	assert.NotRegexp(t, regexp.MustCompile(`(?m)^\s*#\s*include\s*"`), src, "a local include survived")
	assert.Contains(t, src, "#include <metal_stdlib>", "the MSL standard library include must stay")
	for _, name := range order {
		assert.Equal(t, 1, strings.Count(src, "// ---- "+name+" ----"), "file %s", name)
	}
	// The argument header comes before every use of its structs.
	assert.Less(t, strings.Index(src, "typedef struct gomps_args_embed"), strings.Index(src, "gomps_args_embed &args"))
}

// A .metal file that is not in order would be embedded but never compiled.
func TestOrderListsEveryShader(t *testing.T) {
	names, err := fs.Glob(files, "*")
	require.NoError(t, err)
	inOrder := map[string]bool{}
	for _, n := range order {
		inOrder[n] = true
	}
	for _, n := range names {
		if path.Ext(n) == ".metal" || path.Ext(n) == ".h" {
			assert.True(t, inOrder[n], "%s is embedded but missing from order", n)
		}
	}
	assert.Len(t, names, len(order))
}

func TestKernelNames(t *testing.T) {
	want := []string{
		"embed_f32", "embed_f16",
		"layer_norm_f32", "layer_norm_f16",
		"masked_softmax_f32", "masked_softmax_f16",
		"bias_gelu_f32", "bias_gelu_f16",
	}
	got := Kernels()
	assert.Equal(t, want, got)
	// Every kernel has an args struct named gomps_args_<op> (STYLE.md).
	src := Source()
	for _, k := range got {
		op := k[:strings.LastIndex(k, "_")]
		assert.Contains(t, src, "typedef struct gomps_args_"+op+" {", "kernel %s", k)
		assert.Contains(t, src, "constant gomps_args_"+op+" &args [[buffer(0)]]", "kernel %s: buffer 0 must be its args", k)
	}
}
