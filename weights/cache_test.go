package weights_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/weights"
	"github.com/gomps/gomps/weights/weightstest"
)

// fakeCache lays out models--org--name with refs/main -> snapshots/<commit>.
func fakeCache(t *testing.T, hub, id, commit string) string {
	t.Helper()
	repo := filepath.Join(hub, "models--"+strings.ReplaceAll(id, "/", "--"))
	snap := filepath.Join(repo, "snapshots", commit)
	require.NoError(t, os.MkdirAll(snap, 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(repo, "refs"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(commit+"\n"), 0o644))
	return snap
}

// Not parallel: these tests set environment variables.
func TestResolveHFCacheOrder(t *testing.T) {
	root := t.TempDir()
	id := "cross-encoder/ms-marco-MiniLM-L-6-v2"
	const commit = "c5ee24cb16019beea0893ab7796b1df96625c6b8"
	hubCache := filepath.Join(root, "hubcache")
	hfHome := filepath.Join(root, "hfhome")
	xdg := filepath.Join(root, "xdg")
	home := filepath.Join(root, "home")
	snapHub := fakeCache(t, hubCache, id, commit)
	snapHome := fakeCache(t, filepath.Join(hfHome, "hub"), id, commit)
	snapXDG := fakeCache(t, filepath.Join(xdg, "huggingface", "hub"), id, commit)
	snapDefault := fakeCache(t, filepath.Join(home, ".cache", "huggingface", "hub"), id, commit)
	for _, c := range []struct {
		name                    string
		hubEnv, homeEnv, xdgEnv string
		want                    string
	}{
		{"env=HF_HUB_CACHE", hubCache, hfHome, xdg, snapHub},
		{"env=HF_HOME", "", hfHome, xdg, snapHome},
		{"env=XDG_CACHE_HOME", "", "", xdg, snapXDG},
		{"env=none", "", "", "", snapDefault},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("HF_HUB_CACHE", c.hubEnv)
			t.Setenv("HF_HOME", c.homeEnv)
			t.Setenv("XDG_CACHE_HOME", c.xdgEnv)
			t.Setenv("HOME", home)
			got, err := weights.ResolveHFCache(id)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

func TestResolveHFCacheErrors(t *testing.T) {
	hub := t.TempDir()
	t.Setenv("HF_HUB_CACHE", hub)
	id := "org/model"
	_, err := weights.ResolveHFCache(id)
	assert.ErrorIs(t, err, weights.ErrNotInCache)
	assert.ErrorContains(t, err, filepath.Join(hub, "models--org--model"), "says where it looked")
	assert.ErrorContains(t, err, "HF_HUB_CACHE", "says which setting chose the cache")

	repo := filepath.Join(hub, "models--org--model")
	require.NoError(t, os.MkdirAll(repo, 0o755))
	_, err = weights.ResolveHFCache(id)
	assert.ErrorContains(t, err, filepath.Join(repo, "refs", "main"))

	require.NoError(t, os.MkdirAll(filepath.Join(repo, "refs"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(repo, "refs", "main"), []byte("abc123"), 0o644))
	_, err = weights.ResolveHFCache(id)
	assert.ErrorContains(t, err, filepath.Join(repo, "snapshots", "abc123"), "names the missing snapshot")

	require.NoError(t, os.WriteFile(filepath.Join(repo, "refs", "main"), []byte("../../x"), 0o644))
	_, err = weights.ResolveHFCache(id)
	assert.ErrorContains(t, err, "not a commit", "refs/main cannot escape the cache")

	for _, bad := range []string{"", "a/b/c", "../x", "org/..", "a b/c", "org//x", "a--b/c"} {
		_, err := weights.ResolveHFCache(bad)
		assert.ErrorContains(t, err, "model id", "id %q", bad)
	}
}

// TestConvertFromCache converts a model by id, and names it by its id.
func TestConvertFromCache(t *testing.T) {
	hub := t.TempDir()
	t.Setenv("HF_HUB_CACHE", hub)
	snap := fakeCache(t, hub, "org/tiny-ce", "0123abcd")
	_, err := weightstest.WriteHFDir(snap, tinyOpts(51))
	require.NoError(t, err)
	dst := filepath.Join(t.TempDir(), "m.gomps")
	res, err := weights.Convert("org/tiny-ce", dst, weights.ConvertOptions{})
	require.NoError(t, err)
	assert.Equal(t, snap, res.Input)
	assert.Equal(t, "org/tiny-ce", res.Name, "name from the model id")

	// A snapshot directory given as a path is named by its id too.
	res, err = weights.Convert(snap, dst, weights.ConvertOptions{})
	require.NoError(t, err)
	assert.Equal(t, "org/tiny-ce", res.Name)

	_, err = weights.Convert("org/absent", dst, weights.ConvertOptions{})
	assert.ErrorIs(t, err, weights.ErrNotInCache)
}
