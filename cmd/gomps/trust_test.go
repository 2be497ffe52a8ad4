//go:build cgo

package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mirrorHub serves the tiny model as a Hub mirror might: every file
// directly, named by an etag that is no hash, so nothing can be verified.
func mirrorHub(t *testing.T, repo string) *httptest.Server {
	t.Helper()
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/"+repo+"/resolve/")
		_, rest, _ = strings.Cut(rest, "/") // any revision
		b, err := os.ReadFile(filepath.Join("..", "..", "gomps", "testdata", "tiny", rest))
		if !ok || err != nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("X-Repo-Commit", "89abcdef0123456789abcdef0123456789abcdef")
		w.Header().Set("ETag", `"mirror-`+rest+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(hub.Close)
	return hub
}

// A model that cannot be verified is refused unless --trust-unverified.
func TestScoreTrustUnverified(t *testing.T) {
	const id = "gomps-test/tiny-mirror"
	t.Setenv("HF_ENDPOINT", mirrorHub(t, id).URL)
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	t.Setenv("GOMPS_CACHE", t.TempDir())
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_TOKEN", "")
	in := writeFile(t, t.TempDir(), "pairs.tsv", "How many people live in Berlin?\tBerlin has 3.5 million people.\n")
	_, _, err := runScoreCLI(t, "--model", id, "--input", in)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot be verified")
	assert.Contains(t, err.Error(), "--trust-unverified")

	out, _, err := runScoreCLI(t, "--model", id, "--input", in, "--trust-unverified")
	require.NoError(t, err)
	assert.Len(t, rows(out), 1)
}

// Every command that loads a model has --trust-unverified.
func TestTrustUnverifiedOnModelCommands(t *testing.T) {
	n := 0
	for _, c := range newApp().Commands {
		has := map[string]bool{}
		for _, f := range c.Flags {
			has[f.Names()[0]] = true
		}
		if (has["model"] && c.Name != "kernels") || c.Name == "convert" {
			assert.True(t, has["trust-unverified"], "gomps %s --trust-unverified", c.Name)
			n++
		}
	}
	assert.GreaterOrEqual(t, n, 4, "score, bench, serve and convert at least")
}
