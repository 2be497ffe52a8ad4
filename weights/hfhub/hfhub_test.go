package hfhub

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const fakeCommit = "0123456789abcdef0123456789abcdef01234567"

// fakeHub imitates the Hub's resolve endpoint and its LFS storage (a second
// server, another host as far as the client can tell).
type fakeHub struct {
	hub, cdn *httptest.Server
	files    map[string][]byte // repository path -> content
	lfs      map[string]bool   // paths served through the LFS redirect
	token    string            // required bearer token, if set
	badSHA   bool              // announce a sha256 that does not match
	cutAfter int               // the first GET of an LFS file breaks after this many bytes
	noRange  bool              // the storage ignores Range
	oddEtag  bool              // small files get an etag that is not a git sha1
	badSmall bool              // small files get a git sha1 of other content
	mirror   bool              // LFS files come without X-Linked-Etag, named by an etag that is no hash, and tampered
	stall    int               // this many GETs of an LFS file send half of it, then nothing
	extra    int               // LFS files carry this many bytes past their advertised size (sent chunked)

	mu      sync.Mutex
	log     []string // "HEAD path", "GET path range=..."
	cdnAuth []string // Authorization headers the storage saw
	cut     bool
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func gitSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func newFakeHub(t *testing.T) *fakeHub {
	t.Helper()
	model := make([]byte, 300_000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range model {
		model[i] = byte(rng.Uint32())
	}
	f := &fakeHub{
		files: map[string][]byte{
			"config.json":       []byte(`{"architectures": ["BertForSequenceClassification"]}`),
			"tokenizer.json":    []byte(`{"version": "1.0"}`),
			"model.safetensors": model,
			"sub/dir/vocab.txt": []byte("[PAD]\n[UNK]\n"),
		},
		lfs: map[string]bool{"model.safetensors": true},
	}
	f.cdn = httptest.NewServer(http.HandlerFunc(f.serveCDN))
	f.hub = httptest.NewServer(http.HandlerFunc(f.serveHub))
	t.Cleanup(f.hub.Close)
	t.Cleanup(f.cdn.Close)
	return f
}

func (f *fakeHub) record(s string) {
	f.mu.Lock()
	f.log = append(f.log, s)
	f.mu.Unlock()
}

func (f *fakeHub) requests(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, l := range f.log {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func (f *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	f.record(r.Method + " " + r.URL.Path)
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 5)
	if len(parts) < 5 || parts[2] != "resolve" {
		http.NotFound(w, r)
		return
	}
	repo, rev, file := parts[0]+"/"+parts[1], parts[3], parts[4]
	if repo == "old/model" { // renamed repository: relative redirect
		http.Redirect(w, r, "/org/model/resolve/"+rev+"/"+file, http.StatusTemporaryRedirect)
		return
	}
	if repo != "org/model" {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.Header().Set("X-Error-Message", "Repository not found")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		w.Header().Set("X-Error-Code", "GatedRepo")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if rev != "main" && rev != fakeCommit {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	content, ok := f.files[file]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("X-Repo-Commit", fakeCommit)
	if f.lfs[file] && f.mirror {
		w.Header().Set("ETag", `"mirror-lfs-1"`)
		tampered := append([]byte(nil), content...)
		tampered[len(tampered)/2] ^= 1
		http.ServeContent(w, r, file, time.Time{}, bytes.NewReader(tampered))
		return
	}
	if f.lfs[file] {
		sum := sha256Hex(content)
		if f.badSHA {
			sum = sha256Hex(append([]byte("x"), content...))
		}
		w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(content)))
		w.Header().Set("ETag", `W/"not-the-content-hash"`)
		w.Header().Set("Location", f.cdn.URL+"/lfs/"+sha256Hex(content)+"?file="+file)
		w.WriteHeader(http.StatusFound)
		return
	}
	switch {
	case f.oddEtag:
		w.Header().Set("ETag", `W/"mirror-1a2b"`)
	case f.badSmall:
		w.Header().Set("ETag", `"`+gitSHA1(append(content, '!'))+`"`)
	default:
		w.Header().Set("ETag", `"`+gitSHA1(content)+`"`)
	}
	http.ServeContent(w, r, file, time.Time{}, bytes.NewReader(content))
}

func (f *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.log = append(f.log, r.Method+" cdn "+r.URL.Query().Get("file")+" range="+r.Header.Get("Range"))
	f.cdnAuth = append(f.cdnAuth, r.Header.Get("Authorization"))
	cut := f.cutAfter > 0 && !f.cut
	f.cut = f.cut || cut
	stall := f.stall > 0
	if stall {
		f.stall--
	}
	f.mu.Unlock()
	content := f.files[r.URL.Query().Get("file")]
	if stall {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.WriteHeader(http.StatusOK)
		w.Write(content[:len(content)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // nothing more until the client gives up
		return
	}
	if f.extra > 0 {
		w.WriteHeader(http.StatusOK) // no Content-Length: chunked
		w.Write(content)
		w.Write(make([]byte, f.extra))
		return
	}
	if cut {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.WriteHeader(http.StatusOK)
		w.Write(content[:f.cutAfter])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	if f.noRange {
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, "blob", time.Time{}, bytes.NewReader(content))
}

// isolate clears the Hugging Face environment for a test.
func isolate(t *testing.T) string {
	t.Helper()
	for _, k := range []string{"HF_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE", "XDG_CACHE_HOME"} {
		t.Setenv(k, "")
	}
	t.Setenv("HF_TOKEN_PATH", filepath.Join(t.TempDir(), "no-token"))
	return t.TempDir()
}

func TestDownloadLayout(t *testing.T) {
	cache := isolate(t)
	f := newFakeHub(t)
	f.token = "secret"
	var last Progress
	opts := Options{Endpoint: f.hub.URL, CacheDir: cache, Token: "secret", Progress: func(p Progress) {
		if p.File == "model.safetensors" {
			last = p
		}
	}}
	files := append(append([]string(nil), DefaultFiles...), "sub/dir/vocab.txt")
	snap, err := Download(context.Background(), "org/model", "", files, opts)
	require.NoError(t, err)

	repo := filepath.Join(cache, "models--org--model")
	assert.Equal(t, filepath.Join(repo, "snapshots", fakeCommit), snap)
	ref, err := os.ReadFile(filepath.Join(repo, "refs", "main"))
	require.NoError(t, err)
	assert.Equal(t, fakeCommit, string(ref), "refs/main holds the commit")
	for _, name := range files {
		content := f.files[name]
		got, err := os.ReadFile(filepath.Join(snap, name))
		require.NoError(t, err, name)
		assert.True(t, bytes.Equal(content, got), "%s content", name)
		etag := gitSHA1(content)
		if f.lfs[name] {
			etag = sha256Hex(content)
		}
		link, err := os.Readlink(filepath.Join(snap, name))
		require.NoError(t, err, "%s is a symlink", name)
		assert.False(t, filepath.IsAbs(link), "relative link")
		assert.Equal(t, filepath.Join(repo, "blobs", etag), filepath.Join(filepath.Dir(filepath.Join(snap, name)), link), "%s links to blobs/<etag>", name)
	}
	assert.Equal(t, Progress{File: "model.safetensors", Done: 300_000, Total: 300_000}, last)
	f.mu.Lock()
	assert.Equal(t, []string{""}, f.cdnAuth, "the token is not sent to the LFS storage host")
	f.mu.Unlock()
	assert.Len(t, f.requests("GET /org/model/resolve/main/config.json"), 1)
	assert.Len(t, f.requests("HEAD /org/model/resolve/"+fakeCommit+"/tokenizer.json"), 1, "later files pinned to the first file's commit")

	// Again: everything is cached, nothing is downloaded.
	before := len(f.requests("GET"))
	snap2, err := Download(context.Background(), "org/model", "main", files, opts)
	require.NoError(t, err)
	assert.Equal(t, snap, snap2)
	assert.Equal(t, before, len(f.requests("GET")), "no GET for cached blobs")

	// Offline: served from the cache with no request at all.
	t.Setenv("HF_HUB_OFFLINE", "1")
	n := len(f.requests(""))
	snap3, err := Download(context.Background(), "org/model", "main", files, Options{CacheDir: cache, Endpoint: f.hub.URL})
	require.NoError(t, err)
	assert.Equal(t, snap, snap3)
	assert.Equal(t, n, len(f.requests("")), "offline makes no request")
}

func TestOffline(t *testing.T) {
	cache := isolate(t)
	f := newFakeHub(t)
	t.Setenv("HF_HUB_OFFLINE", "1")
	_, err := Download(context.Background(), "org/model", "main", nil, Options{Endpoint: f.hub.URL, CacheDir: cache})
	require.ErrorIs(t, err, ErrOffline)
	assert.Contains(t, err.Error(), "HF_HUB_OFFLINE")
	assert.Contains(t, err.Error(), "by hand")
	assert.Contains(t, err.Error(), "config.json, model.safetensors, tokenizer.json")
	assert.Empty(t, f.requests(""), "no network when offline")

	// A cache with refs/main but a file missing names that file.
	t.Setenv("HF_HUB_OFFLINE", "")
	_, err = Download(context.Background(), "org/model", "main", []string{"config.json"}, Options{Endpoint: f.hub.URL, CacheDir: cache})
	require.NoError(t, err)
	_, err = Download(context.Background(), "org/model", "main", nil, Options{Endpoint: f.hub.URL, CacheDir: cache, Offline: true})
	require.ErrorIs(t, err, ErrOffline)
	assert.Contains(t, err.Error(), "model.safetensors is not in the cache")
}

func TestResumeAfterCutConnection(t *testing.T) {
	cache := isolate(t)
	f := newFakeHub(t)
	f.cutAfter = 100_000
	snap, err := Download(context.Background(), "org/model", "main", []string{"model.safetensors"}, Options{Endpoint: f.hub.URL, CacheDir: cache})
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(snap, "model.safetensors"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(f.files["model.safetensors"], got))
	gets := f.requests("GET cdn")
	require.Len(t, gets, 2)
	assert.Equal(t, "GET cdn model.safetensors range=", gets[0])
	assert.Equal(t, "GET cdn model.safetensors range=bytes=100000-", gets[1], "resumed where the connection broke")
}

func TestResumePartialFile(t *testing.T) {
	for _, noRange := range []bool{false, true} {
		t.Run(fmt.Sprintf("server-range=%v", !noRange), func(t *testing.T) {
			cache := isolate(t)
			f := newFakeHub(t)
			f.noRange = noRange
			content := f.files["model.safetensors"]
			blobs := filepath.Join(cache, "models--org--model", "blobs")
			require.NoError(t, os.MkdirAll(blobs, 0o755))
			inc := filepath.Join(blobs, sha256Hex(content)+".incomplete")
			require.NoError(t, os.WriteFile(inc, content[:123_456], 0o644))

			snap, err := Download(context.Background(), "org/model", "main", []string{"model.safetensors"}, Options{Endpoint: f.hub.URL, CacheDir: cache})
			require.NoError(t, err)
			got, err := os.ReadFile(filepath.Join(snap, "model.safetensors"))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(content, got))
			assert.Equal(t, []string{"GET cdn model.safetensors range=bytes=123456-"}, f.requests("GET cdn"))
			_, err = os.Stat(inc)
			assert.True(t, os.IsNotExist(err), ".incomplete renamed to the blob")
		})
	}
}

func TestWrongSHA(t *testing.T) {
	cache := isolate(t)
	f := newFakeHub(t)
	f.badSHA = true
	_, err := Download(context.Background(), "org/model", "main", []string{"model.safetensors"}, Options{Endpoint: f.hub.URL, CacheDir: cache})
	require.ErrorIs(t, err, ErrChecksum)
	assert.Contains(t, err.Error(), "sha256")
	entries, _ := os.ReadDir(filepath.Join(cache, "models--org--model", "blobs"))
	assert.Empty(t, entries, "neither a blob nor a partial file is kept")
	_, err = os.Stat(filepath.Join(cache, "models--org--model", "snapshots", fakeCommit, "model.safetensors"))
	assert.True(t, os.IsNotExist(err), "no snapshot link to a bad blob")
}

func TestSmallFileEtags(t *testing.T) {
	cache := isolate(t)
	f := newFakeHub(t)
	f.badSmall = true
	_, err := Download(context.Background(), "org/model", "main", []string{"config.json"}, Options{Endpoint: f.hub.URL, CacheDir: cache})
	require.ErrorIs(t, err, ErrChecksum, "small files are checked against their git blob sha1")
	assert.Contains(t, err.Error(), "git sha1")

	f.badSmall, f.oddEtag = false, true
	gets := len(f.requests("GET"))
	_, err = Download(context.Background(), "org/model", "main", []string{"config.json"}, Options{Endpoint: f.hub.URL, CacheDir: cache})
	require.ErrorIs(t, err, ErrUnverified, "an etag that is no hash cannot be verified")
	assert.Contains(t, err.Error(), "--trust-unverified")
	assert.Len(t, f.requests("GET"), gets, "refused before downloading")

	snap, err := Download(context.Background(), "org/model", "main", []string{"config.json"}, Options{Endpoint: f.hub.URL, CacheDir: cache, TrustUnverified: true})
	require.NoError(t, err, "accepted when trusted (some mirrors)")
	link, err := os.Readlink(filepath.Join(snap, "config.json"))
	require.NoError(t, err)
	assert.Equal(t, "mirror-1a2b", filepath.Base(link))
}

// A tampered model.safetensors from a server that names it by an etag that
// is no hash is refused, not scored.
func TestUnverifiedLFSRefused(t *testing.T) {
	cache := isolate(t)
	f := newFakeHub(t)
	f.mirror = true
	_, err := Download(context.Background(), "org/model", "main", []string{"model.safetensors"}, Options{Endpoint: f.hub.URL, CacheDir: cache})
	require.ErrorIs(t, err, ErrUnverified)
	_, err = os.Stat(filepath.Join(cache, "models--org--model", "blobs"))
	assert.True(t, os.IsNotExist(err), "nothing downloaded")
}

// A body that stops arriving is broken off after StallTimeout and resumed.
func TestStalledBodyResumes(t *testing.T) {
	cache := isolate(t)
	f := newFakeHub(t)
	f.stall = 1
	start := time.Now()
	snap, err := Download(context.Background(), "org/model", "main", []string{"model.safetensors"},
		Options{Endpoint: f.hub.URL, CacheDir: cache, StallTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 10*time.Second)
	b, err := os.ReadFile(filepath.Join(snap, "model.safetensors"))
	require.NoError(t, err)
	assert.Equal(t, f.files["model.safetensors"], b)
	gets := f.requests("GET cdn")
	require.Len(t, gets, 2, "one stalled GET, one resumed")
	assert.Equal(t, fmt.Sprintf("GET cdn model.safetensors range=bytes=%d-", len(b)/2), gets[1])
}

// A body that never resumes fails after the retries, saying it stalled.
func TestStalledBodyFails(t *testing.T) {
	cache := isolate(t)
	f := newFakeHub(t)
	f.stall = 100
	_, err := Download(context.Background(), "org/model", "main", []string{"model.safetensors"},
		Options{Endpoint: f.hub.URL, CacheDir: cache, StallTimeout: 100 * time.Millisecond, Retries: 2})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nothing received for 100ms")
	assert.Len(t, f.requests("GET cdn"), 3)
}

// A body longer than its advertised size is cut off at that size and
// discarded, and so is an unsized body past maxUnsizedBytes.
func TestBodyOverAdvertisedSize(t *testing.T) {
	cache := isolate(t)
	f := newFakeHub(t)
	f.extra = 4 << 20
	_, err := Download(context.Background(), "org/model", "main", []string{"model.safetensors"}, Options{Endpoint: f.hub.URL, CacheDir: cache})
	require.ErrorIs(t, err, ErrTooLarge)
	entries, _ := os.ReadDir(filepath.Join(cache, "models--org--model", "blobs"))
	assert.Empty(t, entries, "nothing kept")

	f.extra = 0
	old := maxUnsizedBytes
	maxUnsizedBytes = 1000
	defer func() { maxUnsizedBytes = old }()
	d := &downloader{opts: Options{Client: defaultClient(), StallTimeout: time.Second}, repoID: "org/model", repo: filepath.Join(cache, "models--org--model")}
	inc := filepath.Join(t.TempDir(), "blob.incomplete")
	_, err = d.get(context.Background(), "config.json", &fileMeta{size: -1, getURL: f.cdn.URL + "/lfs/x?file=model.safetensors"}, inc)
	require.ErrorIs(t, err, ErrTooLarge, "an unsized body is capped")
	_, err = os.Stat(inc)
	assert.True(t, os.IsNotExist(err), "the partial file is removed")
}

func TestHTTPErrors(t *testing.T) {
	cache := isolate(t)
	f := newFakeHub(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, repo, rev string
		files           []string
		want            error
		says            string
	}{
		{"repo", "org/missing", "main", nil, ErrNotFound, "the repository does not exist"},
		{"file", "org/model", "main", []string{"nope.bin"}, ErrNotFound, "the file does not exist"},
		{"revision", "org/model", "v9", nil, ErrNotFound, "the revision does not exist"},
	} {
		t.Run("404="+tc.name, func(t *testing.T) {
			_, err := Download(ctx, tc.repo, tc.rev, tc.files, Options{Endpoint: f.hub.URL, CacheDir: cache})
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.says)
			assert.Contains(t, err.Error(), "by hand")
			assert.NotContains(t, err.Error(), "\n")
		})
	}

	f.token = "secret"
	_, err := Download(ctx, "org/model", "main", nil, Options{Endpoint: f.hub.URL, CacheDir: cache})
	require.ErrorIs(t, err, ErrUnauthorized)
	assert.Contains(t, err.Error(), "set HF_TOKEN")
	assert.Contains(t, err.Error(), "by hand")
	_, err = Download(ctx, "org/model", "main", nil, Options{Endpoint: f.hub.URL, CacheDir: cache, Token: "wrong"})
	require.ErrorIs(t, err, ErrUnauthorized)
	assert.Contains(t, err.Error(), "has no access")

	t.Setenv("HF_TOKEN", "secret")
	t.Setenv("HF_ENDPOINT", f.hub.URL)
	t.Setenv("HF_HUB_CACHE", cache)
	snap, err := Download(ctx, "org/model", "main", nil, Options{})
	require.NoError(t, err, "HF_TOKEN, HF_ENDPOINT and HF_HUB_CACHE from the environment")
	assert.Equal(t, filepath.Join(cache, "models--org--model", "snapshots", fakeCommit), snap)
}

func TestRenamedRepoAndTokenFile(t *testing.T) {
	cache := isolate(t)
	f := newFakeHub(t)
	f.token = "from-file"
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_TOKEN_PATH", "")
	require.NoError(t, os.WriteFile(filepath.Join(home, "token"), []byte("from-file\n"), 0o600))
	snap, err := Download(context.Background(), "old/model", "main", []string{"config.json"}, Options{Endpoint: f.hub.URL, CacheDir: cache})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cache, "models--old--model", "snapshots", fakeCommit), snap)
	assert.Len(t, f.requests("HEAD /old/model/resolve/main/config.json"), 1)
	assert.Len(t, f.requests("HEAD /org/model/resolve/main/config.json"), 1, "relative redirect followed")
}

func TestCacheDirEnv(t *testing.T) {
	isolate(t)
	home, err := os.UserHomeDir()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(home, ".cache", "huggingface", "hub"), CacheDir())
	t.Setenv("XDG_CACHE_HOME", "/x")
	assert.Equal(t, "/x/huggingface/hub", CacheDir())
	t.Setenv("HF_HOME", "/h")
	assert.Equal(t, "/h/hub", CacheDir())
	t.Setenv("HF_HUB_CACHE", "/c")
	assert.Equal(t, "/c", CacheDir())
}

func TestBadArguments(t *testing.T) {
	cache := isolate(t)
	for _, tc := range []struct{ repo, rev, file string }{
		{"a/b/c", "main", "config.json"},
		{"org/../x", "main", "config.json"},
		{"org/model", "main", "../escape"},
		{"org/model", "main", "/abs"},
		{"org/model", "../x", "config.json"},
	} {
		_, err := Download(context.Background(), tc.repo, tc.rev, []string{tc.file}, Options{Endpoint: "http://127.0.0.1:1", CacheDir: cache})
		assert.Error(t, err, "%+v", tc)
	}
}

// TestConcurrentDownloads races downloaders of one blob: the lock file lets
// exactly one fetch it.
func TestConcurrentDownloads(t *testing.T) {
	cache := isolate(t)
	f := newFakeHub(t)
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := Download(context.Background(), "org/model", "main", []string{"config.json", "model.safetensors"}, Options{Endpoint: f.hub.URL, CacheDir: cache})
			errs <- err
		}()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	assert.Len(t, f.requests("GET cdn"), 1, "one download of the blob")
	assert.Len(t, f.requests("GET /org/model/resolve/main/config.json"), 1, "one download of the small file")
	entries, err := os.ReadDir(filepath.Join(cache, "models--org--model", "snapshots", fakeCommit))
	require.NoError(t, err)
	assert.Len(t, entries, 2, "no temporary links left")
	_, err = os.Stat(filepath.Join(cache, ".locks", "models--org--model", sha256Hex(f.files["model.safetensors"])+".lock"))
	assert.NoError(t, err, "lock file where huggingface_hub keeps its own")
}

func TestContextCancel(t *testing.T) {
	cache := isolate(t)
	f := newFakeHub(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Download(ctx, "org/model", "main", nil, Options{Endpoint: f.hub.URL, CacheDir: cache})
	assert.ErrorIs(t, err, context.Canceled)
}
