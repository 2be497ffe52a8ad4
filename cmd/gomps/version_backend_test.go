//go:build cgo && !darwin

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/cpu/isaexpect"
)

// TestVersionBackend: `gomps version --json` reports the ISA under
// ONEDNN_MAX_CPU_ISA and the table's native precisions at it, and says why
// the backend cannot run under a value oneDNN does not know. Each case runs
// in a child process, since oneDNN reads its ceiling once per process.
func TestVersionBackend(t *testing.T) {
	if os.Getenv("GOMPS_TEST_VERSION_CHILD") == "1" {
		out, err := runCLI(t, "version", "--json")
		require.NoError(t, err)
		_, err = os.Stdout.WriteString("VERSION " + out)
		require.NoError(t, err)
		return
	}
	run := func(t *testing.T, cap string) buildVersion {
		cmd := exec.Command(os.Args[0], "-test.run=^TestVersionBackend$", "-test.count=1")
		cmd.Env = append(os.Environ(), "GOMPS_TEST_VERSION_CHILD=1", "ONEDNN_MAX_CPU_ISA="+cap, "DNNL_MAX_CPU_ISA=")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		var v buildVersion
		for _, line := range strings.Split(string(out), "\n") {
			if rest, ok := strings.CutPrefix(line, "VERSION "); ok {
				require.NoError(t, json.Unmarshal([]byte(rest), &v))
				return v
			}
		}
		t.Fatalf("no version line in:\n%s", out)
		return v
	}
	l, err := isaexpect.For("avx2")
	require.NoError(t, err)
	v := run(t, "AVX2")
	assert.Equal(t, "cpu", v.Backend)
	assert.Equal(t, l.ISA, v.ISA)
	assert.Equal(t, l.Precisions(), v.Precisions)
	assert.Empty(t, v.BackendError)

	v = run(t, "avx3")
	assert.Contains(t, v.BackendError, "ONEDNN_MAX_CPU_ISA=avx3 is not an ISA level")
}
