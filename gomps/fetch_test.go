//go:build cgo

package gomps

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFetchModel(t *testing.T) {
	const id = "gomps-test/tiny-reranker"
	hub := newTinyHub(t, id)
	hubCache := t.TempDir()
	t.Setenv("HF_ENDPOINT", hub.srv.URL)
	t.Setenv("HF_HUB_CACHE", hubCache)
	t.Setenv("GOMPS_CACHE", t.TempDir())
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_TOKEN", "")
	t.Setenv("GOMPS_MODEL", "")

	var notices bytes.Buffer
	src, err := FetchModel(context.Background(), id, &notices)
	require.NoError(t, err)
	want := Source{Path: filepath.Join(hubCache, "models--gomps-test--tiny-reranker", "snapshots", hubCommit), Kind: SourceHFDir, ModelID: id}
	assert.Equal(t, want, src, "the snapshot directory, not the native copy")
	assert.Contains(t, notices.String(), "downloading it from the Hub")

	n := len(hub.requests())
	notices.Reset()
	src, err = FetchModel(context.Background(), id, &notices)
	require.NoError(t, err)
	assert.Equal(t, want, src)
	assert.Len(t, hub.requests(), n, "found in the cache: no request")
	assert.Empty(t, notices.String())

	dir := filepath.Join("testdata", "tiny")
	src, err = FetchModel(context.Background(), dir, nil)
	require.NoError(t, err)
	assert.Equal(t, Source{Path: dir, Kind: SourceHFDir}, src, "a directory is itself")

	t.Setenv("HF_HUB_OFFLINE", "1")
	_, err = FetchModel(context.Background(), "gomps-test/absent", nil)
	assert.ErrorIs(t, err, ErrNoModel)
}
