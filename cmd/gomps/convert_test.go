package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/weights"
	"github.com/gomps/gomps/weights/weightstest"
)

// runConvertCLI runs a gomps app with a fresh convert command.
func runConvertCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runApp(t, []*cli.Command{newConvertCommand()}, args...)
}

func TestConvertCommand(t *testing.T) {
	dir := t.TempDir()
	o := weightstest.Options{Config: weightstest.TinyConfig(), Seed: 3, Architecture: "BertModel", PositionIDs: true}
	_, err := weightstest.WriteHFDir(dir, o)
	require.NoError(t, err)
	head := filepath.Join(t.TempDir(), "head.safetensors")
	_, err = weightstest.WriteHead(head, o.Config.HiddenSize, 1)
	require.NoError(t, err)
	outDir := t.TempDir()
	out := filepath.Join(outDir, "tiny.gomps")

	t.Run("case=no_head", func(t *testing.T) {
		_, _, err := runConvertCLI(t, "convert", "--input", dir, "--output", out)
		require.Error(t, err)
		assert.ErrorIs(t, err, weights.ErrNeedHead)
		assert.True(t, strings.HasPrefix(err.Error(), "convert: weights: "), "component prefixes: %v", err)
		_, statErr := os.Stat(out)
		assert.True(t, os.IsNotExist(statErr), "nothing written")
	})
	t.Run("case=f16_json", func(t *testing.T) {
		stdout, stderr, err := runConvertCLI(t, "convert", "-i", dir, "-o", out, "--dtype", "f16", "--head", head, "--name", "test/tiny", "--json")
		require.NoError(t, err)
		var s convertSummary
		require.NoError(t, json.Unmarshal([]byte(stdout), &s), stdout)
		assert.Equal(t, "test/tiny", s.Name)
		assert.Equal(t, "F16", s.DType)
		assert.Equal(t, 33, s.Tensors)
		assert.Equal(t, 2, s.Layers)
		assert.Contains(t, stderr, "convert: 33/33 tensors", "progress on stderr")
		assert.Contains(t, stderr, "convert: wrote "+out, "summary on stderr")
		n, err := weights.OpenNative(out)
		require.NoError(t, err)
		defer n.Close()
		assert.Equal(t, weights.F16, n.DType())
		assert.Equal(t, "test/tiny", n.Name())
		fi, err := os.Stat(out)
		require.NoError(t, err)
		assert.Equal(t, s.Bytes, fi.Size())
		entries, err := os.ReadDir(outDir)
		require.NoError(t, err)
		assert.Len(t, entries, 1, "no temporary file left")
	})
	t.Run("case=env_vars", func(t *testing.T) {
		out2 := filepath.Join(outDir, "env.gomps")
		t.Setenv("GOMPS_CONVERT_INPUT", dir)
		t.Setenv("GOMPS_CONVERT_OUTPUT", out2)
		t.Setenv("GOMPS_CONVERT_HEAD", head)
		t.Setenv("GOMPS_CONVERT_DTYPE", "f32")
		stdout, stderr, err := runConvertCLI(t, "convert", "--quiet")
		require.NoError(t, err)
		assert.Empty(t, stdout)
		assert.Empty(t, stderr, "--quiet")
		n, err := weights.OpenNative(out2)
		require.NoError(t, err)
		defer n.Close()
		assert.Equal(t, weights.F32, n.DType())
		assert.Equal(t, filepath.Base(dir), n.Name(), "default name")
	})
	t.Run("case=bad_dtype", func(t *testing.T) {
		_, _, err := runConvertCLI(t, "convert", "-i", dir, "-o", out, "--dtype", "bf16")
		assert.ErrorContains(t, err, "want f32 or f16")
	})
	t.Run("case=offline_not_in_cache", func(t *testing.T) {
		t.Setenv("HF_HUB_CACHE", t.TempDir())
		t.Setenv("HF_HUB_OFFLINE", "1")
		_, _, err := runConvertCLI(t, "convert", "-i", "org/absent-model", "-o", out)
		assert.ErrorIs(t, err, gomps.ErrNoModel)
		assert.ErrorContains(t, err, "HF_HUB_OFFLINE")
		assert.ErrorContains(t, err, "models--org--absent-model")
	})
	t.Run("case=downloads_from_the_hub", func(t *testing.T) {
		// The Hub holds an encoder (BertModel): gomps score could not load
		// it, convert does with --head.
		const id = "gomps-test/encoder"
		hubCache := t.TempDir()
		t.Setenv("HF_ENDPOINT", fakeHub(t, id, dir))
		t.Setenv("HF_HUB_CACHE", hubCache)
		t.Setenv("HF_HUB_OFFLINE", "")
		t.Setenv("HF_TOKEN", "")
		t.Setenv("GOMPS_CACHE", t.TempDir())
		out3 := filepath.Join(outDir, "hub.gomps")
		_, stderr, err := runConvertCLI(t, "convert", "-i", id, "-o", out3, "--head", head)
		require.NoError(t, err)
		assert.Contains(t, stderr, id+" is not in the Hugging Face cache; downloading it from the Hub")
		n, err := weights.OpenNative(out3)
		require.NoError(t, err)
		defer n.Close()
		assert.Equal(t, id, n.Name(), "named after the model id")
		snap, err := weights.ResolveHFCache(id)
		require.NoError(t, err, "the download is in the Hugging Face cache")
		assert.True(t, strings.HasPrefix(snap, hubCache))
	})
}

// fakeHub serves the files of dir as the Hugging Face Hub serves repository
// repo (/{repo}/resolve/{rev}/{file} with X-Repo-Commit and a git blob sha1
// ETag; no LFS redirect) and returns its URL.
func fakeHub(t *testing.T, repo, dir string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/"+repo+"/resolve/")
		_, file, _ := strings.Cut(rest, "/") // any revision: main, then the commit
		b, err := os.ReadFile(filepath.Join(dir, filepath.Base(file)))
		if !ok || err != nil {
			w.Header().Set("X-Error-Code", "EntryNotFound")
			w.WriteHeader(http.StatusNotFound)
			return
		}
		g := sha1.New()
		fmt.Fprintf(g, "blob %d\x00", len(b))
		g.Write(b)
		w.Header().Set("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
		w.Header().Set("ETag", `"`+hex.EncodeToString(g.Sum(nil))+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
