//go:build cgo

package gomps

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/weights/hfhub"
)

const hubCommit = "89abcdef0123456789abcdef0123456789abcdef"

// tinyHub serves gomps/testdata/tiny as the Hub serves a repository:
// /{org}/{name}/resolve/{rev}/{file} with X-Repo-Commit and a git-sha1 ETag
// for small files, and a redirect to LFS storage with X-Linked-Etag (sha256)
// and X-Linked-Size for model.safetensors.
type tinyHub struct {
	srv   *httptest.Server
	repo  string
	files map[string][]byte
	mu    sync.Mutex
	log   []string
	// mirror: every file is served directly, named by an etag that is no
	// hash (as some mirrors do).
	mirror bool
}

func newTinyHub(t *testing.T, repo string) *tinyHub {
	t.Helper()
	h := &tinyHub{repo: repo, files: map[string][]byte{}}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "tiny", f))
		require.NoError(t, err)
		h.files[f] = b
	}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *tinyHub) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.log...)
}

func (h *tinyHub) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.log = append(h.log, r.Method+" "+r.URL.Path)
	h.mu.Unlock()
	if sum, ok := strings.CutPrefix(r.URL.Path, "/lfs/"); ok {
		for _, b := range h.files {
			if s := sha256.Sum256(b); hex.EncodeToString(s[:]) == sum {
				http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
				return
			}
		}
		http.NotFound(w, r)
		return
	}
	prefix := "/" + h.repo + "/resolve/"
	rest, ok := strings.CutPrefix(r.URL.Path, prefix)
	rev, file, _ := strings.Cut(rest, "/")
	content, found := h.files[file]
	if !ok || (rev != "main" && rev != hubCommit) || !found {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("X-Repo-Commit", hubCommit)
	if h.mirror {
		w.Header().Set("ETag", `"mirror-`+file+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
		return
	}
	if file == "model.safetensors" {
		s := sha256.Sum256(content)
		w.Header().Set("X-Linked-Etag", `"`+hex.EncodeToString(s[:])+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(content)))
		w.Header().Set("Location", h.srv.URL+"/lfs/"+hex.EncodeToString(s[:]))
		w.WriteHeader(http.StatusFound)
		return
	}
	g := sha1.New()
	fmt.Fprintf(g, "blob %d\x00", len(content))
	g.Write(content)
	w.Header().Set("ETag", `"`+hex.EncodeToString(g.Sum(nil))+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
}

func TestOpenModelIDDownloadsAndCaches(t *testing.T) {
	const id = "gomps-test/tiny-reranker"
	hub := newTinyHub(t, id)
	hubCache, cache := t.TempDir(), t.TempDir()
	t.Setenv("HF_ENDPOINT", hub.srv.URL)
	t.Setenv("HF_HUB_CACHE", hubCache)
	t.Setenv("GOMPS_CACHE", cache)
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_TOKEN", "")
	t.Setenv("GOMPS_MODEL", "")

	want := func() []float32 {
		r := openTiny(t)
		s, err := scorePairs(r, context.Background(), []Pair{{Query: berlinQ, Passage: berlinP1}, {Query: berlinQ, Passage: berlinP2}})
		require.NoError(t, err)
		return s
	}()

	// First Open: downloads into the Hugging Face cache layout, converts
	// once into the gomps cache.
	var notices bytes.Buffer
	r, err := Open(context.Background(), id, WithNotices(&notices))
	require.NoError(t, err)
	native := NativeCachePath(id, hubCommit)
	assert.Equal(t, filepath.Join(cache, "models", "gomps-test--tiny-reranker-"+hubCommit+".gomps"), native)
	assert.Equal(t, native, r.Info().Path, "loaded from the converted file")
	assert.Equal(t, SourceNative, r.Info().Kind)
	got, err := scorePairs(r, context.Background(), []Pair{{Query: berlinQ, Passage: berlinP1}, {Query: berlinQ, Passage: berlinP2}})
	require.NoError(t, err)
	require.NoError(t, r.Close())
	assert.Equal(t, want, got, "the downloaded model scores as the local one")
	assert.Contains(t, notices.String(), "downloading it from the Hub")
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		_, err := os.Stat(filepath.Join(hubCache, "models--gomps-test--tiny-reranker", "snapshots", hubCommit, f))
		assert.NoError(t, err, "snapshot file %s", f)
	}
	ref, err := os.ReadFile(filepath.Join(hubCache, "models--gomps-test--tiny-reranker", "refs", "main"))
	require.NoError(t, err)
	assert.Equal(t, hubCommit, strings.TrimSpace(string(ref)))
	st, err := os.Stat(native)
	require.NoError(t, err)
	firstReqs := len(hub.requests())
	assert.Positive(t, firstReqs)
	entries, err := os.ReadDir(filepath.Dir(native))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left beside the converted model")

	// Second Open: no network at all (the hub is closed), no reconversion.
	hub.srv.Close()
	notices.Reset()
	r, err = Open(context.Background(), id, WithNotices(&notices))
	require.NoError(t, err)
	assert.Equal(t, native, r.Info().Path)
	got, err = scorePairs(r, context.Background(), []Pair{{Query: berlinQ, Passage: berlinP1}, {Query: berlinQ, Passage: berlinP2}})
	require.NoError(t, err)
	require.NoError(t, r.Close())
	assert.Equal(t, want, got)
	assert.Empty(t, notices.String(), "nothing downloaded")
	assert.Len(t, hub.requests(), firstReqs, "no request the second time")
	st2, err := os.Stat(native)
	require.NoError(t, err)
	assert.Equal(t, st.ModTime(), st2.ModTime(), "the converted file is reused, not rewritten")

	// GOMPS_MODEL names it as well.
	t.Setenv("GOMPS_MODEL", id)
	r, err = Open(context.Background(), "")
	require.NoError(t, err)
	assert.Equal(t, native, r.Info().Path)
	require.NoError(t, r.Close())
}

func TestOpenModelIDOfflineAndFailures(t *testing.T) {
	const id = "gomps-test/tiny-reranker"
	hub := newTinyHub(t, id)
	t.Setenv("HF_ENDPOINT", hub.srv.URL)
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	t.Setenv("GOMPS_CACHE", t.TempDir())
	t.Setenv("HF_TOKEN", "")
	t.Setenv("GOMPS_MODEL", "")

	// Offline with an empty cache: a clear error, no request.
	t.Setenv("HF_HUB_OFFLINE", "1")
	_, err := Open(context.Background(), id, WithNotices(nil))
	require.ErrorIs(t, err, ErrNoModel)
	assert.ErrorContains(t, err, "HF_HUB_OFFLINE")
	assert.ErrorContains(t, err, "to supply the files by hand")
	assert.ErrorContains(t, err, "config.json, model.safetensors, tokenizer.json")
	assert.Empty(t, hub.requests(), "offline means no network")

	// Online, a repository the Hub does not have: the Hub's answer and the hint.
	t.Setenv("HF_HUB_OFFLINE", "")
	_, err = Open(context.Background(), "gomps-test/absent", WithNotices(nil))
	require.ErrorIs(t, err, ErrNoModel)
	assert.ErrorContains(t, err, "gomps-test/absent")
	assert.ErrorContains(t, err, "by hand")

	// An unreachable Hub: the same.
	hub.srv.Close()
	_, err = Open(context.Background(), id, WithNotices(nil))
	require.ErrorIs(t, err, ErrNoModel)
	assert.ErrorContains(t, err, "by hand")
}

// hubEnv points the Hugging Face and gomps caches at new temporary folders
// and the Hub at hub, online and without a token or GOMPS_MODEL.
func hubEnv(t *testing.T, hub *tinyHub) {
	t.Helper()
	t.Setenv("HF_ENDPOINT", hub.srv.URL)
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	t.Setenv("GOMPS_CACHE", t.TempDir())
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_TOKEN", "")
	t.Setenv("GOMPS_MODEL", "")
}

// A model argument that is neither a path nor an "org/name" id is an error
// at once, without asking the Hub.
func TestOpenMistypedModelNoNetwork(t *testing.T) {
	hub := newTinyHub(t, "gomps-test/tiny-reranker")
	hubEnv(t, hub)
	for _, m := range []string{"foo", "tiny.gomps", "./models/x", "a/b/c", "org/na me", "org/", "/org/name", "org--x/name"} {
		_, err := Open(context.Background(), m, WithNotices(nil))
		require.ErrorIs(t, err, ErrNoModel, m)
		assert.ErrorContains(t, err, "nor a Hugging Face model id", m)
	}
	assert.Empty(t, hub.requests(), "no request for a mistyped model")
}

// A Hub that names files by etags that are no hash cannot be verified:
// Open refuses the download unless WithTrustUnverified.
func TestOpenModelIDUnverified(t *testing.T) {
	const id = "gomps-test/tiny-reranker"
	hub := newTinyHub(t, id)
	hub.mirror = true
	hubEnv(t, hub)
	_, err := Open(context.Background(), id, WithNotices(nil))
	require.ErrorIs(t, err, ErrNoModel)
	require.ErrorIs(t, err, hfhub.ErrUnverified)
	assert.ErrorContains(t, err, "--trust-unverified")

	r, err := Open(context.Background(), id, WithNotices(nil), WithTrustUnverified())
	require.NoError(t, err, "trusted")
	require.NoError(t, r.Close())
}
