package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/gomps/gomps/weights"
	"github.com/gomps/gomps/weights/weightstest"
)

// runConvertCLI runs a gomps app with a fresh convert command.
func runConvertCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	app := newApp()
	app.Commands = []*cli.Command{newConvertCommand()}
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err = app.Run(append([]string{"gomps"}, args...))
	return out.String(), errOut.String(), err
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
	t.Run("case=not_in_cache", func(t *testing.T) {
		t.Setenv("HF_HUB_CACHE", t.TempDir())
		_, _, err := runConvertCLI(t, "convert", "-i", "org/absent-model", "-o", out)
		assert.ErrorIs(t, err, weights.ErrNotInCache)
		assert.ErrorContains(t, err, "models--org--absent-model")
	})
}
