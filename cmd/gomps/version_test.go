package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersionUnstamped(t *testing.T) {
	// A test binary carries neither link-time values nor VCS data.
	v := readVersion()
	assert.Equal(t, baseVersion+"-devel", v.Version, "the committed version backs an unstamped build")
	assert.Equal(t, noVCS, v.Commit)
	assert.Contains(t, v.Commit, "built without VCS data", "said plainly")

	version, commit, modified = "v9.8.7", "abc123", "true"
	t.Cleanup(func() { version, commit, modified = "", "", "" })
	v = readVersion()
	assert.Equal(t, []any{"v9.8.7", "abc123", true}, []any{v.Version, v.Commit, v.Modified}, "link-time values win")
}

// TestVersionBuilds builds the binary the ways the README gives and reads
// back what `gomps version` says.
func TestVersionBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary twice")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	ldflags, err := exec.Command("bash", filepath.Join("..", "..", "tools", "lib", "ldflags.sh")).Output()
	require.NoError(t, err)
	build := func(args ...string) buildVersion {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "gomps")
		cmd := exec.Command("go", append(append([]string{"build", "-o", bin}, args...), ".")...)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Run(), "go build %v", args)
		out, err := exec.Command(bin, "version", "--json").Output()
		require.NoError(t, err)
		var v buildVersion
		require.NoError(t, json.Unmarshal(out, &v))
		return v
	}
	stamped := build("-ldflags", strings.TrimSpace(string(ldflags)))
	assert.Equal(t, strings.TrimSpace(string(head)), stamped.Commit, "tools/lib/ldflags.sh stamps the commit")
	assert.True(t, stamped.Version == baseVersion+"-devel" || strings.HasPrefix(stamped.Version, "v"), stamped.Version)
	plain := build("-buildvcs=false")
	assert.Equal(t, baseVersion+"-devel", plain.Version)
	assert.Equal(t, noVCS, plain.Commit, "a build without VCS data says so")
}
