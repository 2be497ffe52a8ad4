// Package hfhub downloads files of a model repository from the Hugging Face
// Hub into the local Hugging Face cache, as huggingface_hub does, in pure Go.
//
// Protocol (as the Hub documents it): HEAD {endpoint}/{repo}/resolve/{rev}/{file}
// without following redirects to other hosts (a relative redirect, such as a
// renamed repository, is followed). The response, or the redirect to the LFS
// storage, carries X-Repo-Commit (the commit the revision resolves to) and
// X-Linked-Etag or ETag (the file's id: the sha256 of an LFS file, the git blob
// sha1 of a small file), and X-Linked-Size. The file is then fetched with GET
// from the redirect target or the resolve URL into blobs/<etag>.incomplete,
// resuming a partial file with a Range request, verified against the etag
// (sha256, or git blob sha1), and renamed to blobs/<etag>. A file whose etag
// is neither hash cannot be verified and is refused unless
// Options.TrustUnverified. A body is read no further than its advertised
// size, and a body that sends nothing for Options.StallTimeout is broken
// off and resumed.
//
// Cache layout (huggingface_hub's): {cache}/models--{org}--{name}/ with
// blobs/<etag>, snapshots/<commit>/<file> a relative symlink to the blob, and
// refs/<rev> holding the commit. The cache directory is HF_HUB_CACHE, else
// HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub. HF_ENDPOINT replaces https://huggingface.co;
// HF_TOKEN (else the token file HF_TOKEN_PATH or HF_HOME/token) is sent as
// "Authorization: Bearer" to the endpoint's host only; HF_HUB_OFFLINE=1 means
// no network: files come from the cache or the call fails saying so.
//
// Downloads of one blob by several processes are serialized by a lock file in
// {cache}/.locks/models--{org}--{name}/<etag>.lock (flock, on Unix).
package hfhub

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultEndpoint is the Hub used when neither Options.Endpoint nor
// HF_ENDPOINT is set.
const DefaultEndpoint = "https://huggingface.co"

// DefaultFiles are the files a cross-encoder model needs.
var DefaultFiles = []string{"config.json", "model.safetensors", "tokenizer.json"}

// Errors, matched with errors.Is; the returned errors wrap them with detail
// and a hint on supplying the files by hand.
var (
	ErrOffline      = errors.New("offline")
	ErrUnauthorized = errors.New("not authorized")
	ErrNotFound     = errors.New("not found")
	ErrChecksum     = errors.New("checksum mismatch")
	// ErrUnverified: the server named the file by an etag that is neither
	// a sha256 nor a git blob sha1, so its content cannot be checked.
	ErrUnverified = errors.New("cannot be verified")
	// ErrTooLarge: the server sent more than the file's advertised size
	// (or than maxUnsizedBytes when it advertised none).
	ErrTooLarge = errors.New("larger than advertised")
)

// DefaultStallTimeout is how long a download waits for the next bytes of a
// response by default.
const DefaultStallTimeout = 60 * time.Second

// maxUnsizedBytes caps a file whose size the server does not advertise.
var maxUnsizedBytes int64 = 4 << 30

// Progress reports a file's download.
type Progress struct {
	File  string // the repository path, e.g. "model.safetensors"
	Done  int64  // bytes in the blob so far, including a resumed part
	Total int64  // expected size, -1 if unknown
}

// Options configure Download. Zero fields take their defaults from the
// environment, as huggingface_hub does.
type Options struct {
	Endpoint string       // default HF_ENDPOINT, else DefaultEndpoint
	Token    string       // default HF_TOKEN, else the token file
	CacheDir string       // hub cache directory; default CacheDir()
	Offline  bool         // also true when HF_HUB_OFFLINE is 1/true/yes/on
	Client   *http.Client // default: a client with connection timeouts only
	// Progress, if set, is called as bytes arrive (from the calling goroutine).
	Progress func(Progress)
	// Retries is how many times a cut download is resumed (default 3).
	Retries int
	// StallTimeout is how long a request may wait for its response or the
	// next bytes of a body before it is broken off (and the download
	// resumed). Default DefaultStallTimeout.
	StallTimeout time.Duration
	// TrustUnverified accepts files the server names by an etag that is no
	// hash (some mirrors do), checking only their size. By default they are
	// refused with ErrUnverified.
	TrustUnverified bool
}

// CacheDir returns the hub cache directory from the environment.
func CacheDir() string {
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("HF_HOME"); d != "" {
		return filepath.Join(d, "hub")
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "huggingface", "hub")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "."
	}
	return filepath.Join(home, ".cache", "huggingface", "hub")
}

// RepoDir returns the cache directory of a model repository.
func RepoDir(cacheDir, repoID string) string {
	return filepath.Join(cacheDir, "models--"+strings.ReplaceAll(repoID, "/", "--"))
}

func envTrue(name string) bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(name))) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

func envToken() string {
	if t := strings.TrimSpace(os.Getenv("HF_TOKEN")); t != "" {
		return t
	}
	p := os.Getenv("HF_TOKEN_PATH")
	if p == "" {
		home := os.Getenv("HF_HOME")
		if home == "" {
			if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
				home = filepath.Join(x, "huggingface")
			} else if h, err := os.UserHomeDir(); err == nil {
				home = filepath.Join(h, ".cache", "huggingface")
			}
		}
		if home == "" {
			return ""
		}
		p = filepath.Join(home, "token")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

var (
	repoPartRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	commitRe   = regexp.MustCompile(`^[0-9a-f]{40}$`)
	sha256Re   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	etagRe     = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
)

// ValidModelID reports whether id is a model repository id of the form
// "org/name" (letters, digits, '.', '_' and '-'), as a model argument must
// be to be looked up or downloaded.
func ValidModelID(id string) bool {
	return strings.Count(id, "/") == 1 && checkRepoID(id) == nil
}

func checkRepoID(id string) error {
	parts := strings.Split(id, "/")
	if len(parts) > 2 {
		return fmt.Errorf("hfhub: repo id %q: want \"org/name\"", id)
	}
	for _, p := range parts {
		if !repoPartRe.MatchString(p) || strings.Contains(p, "--") || strings.Contains(p, "..") || len(p) > 96 {
			return fmt.Errorf("hfhub: repo id %q: want \"org/name\" of letters, digits, '.', '_' and '-'", id)
		}
	}
	return nil
}

func checkRev(rev string) error {
	if rev == "" || strings.Contains(rev, "..") || strings.ContainsAny(rev, "\\\x00 ") || strings.HasPrefix(rev, "/") || len(rev) > 256 {
		return fmt.Errorf("hfhub: revision %q is not valid", rev)
	}
	return nil
}

func checkFile(f string) error {
	if f == "" || path.IsAbs(f) || strings.Contains(f, "\\") || strings.ContainsRune(f, 0) || path.Clean(f) != f || f == "." || strings.HasPrefix(f, "../") || f == ".." {
		return fmt.Errorf("hfhub: file name %q is not a clean relative path", f)
	}
	return nil
}

// manualHint tells the user how to supply the files without the Hub.
func manualHint(repoID string, files []string, cacheDir string) string {
	return fmt.Sprintf("to supply the files by hand, fetch %s from https://huggingface.co/%s on a machine that can, put them in one directory and pass that directory as the model, or place them in %s/snapshots/<commit>/ with the commit in %s/refs/main",
		strings.Join(files, ", "), repoID, RepoDir(cacheDir, repoID), RepoDir(cacheDir, repoID))
}

// fileMeta is what the HEAD request tells about a file.
type fileMeta struct {
	commit string
	etag   string
	size   int64  // -1 if unknown
	getURL string // where to GET the content
}

// Download makes files of repoID at revision rev (default "main") present in
// the cache and returns the snapshot directory holding them
// (…/snapshots/<commit>). Files already in the cache are not fetched again.
// All files come from the commit the first file resolves to.
func Download(ctx context.Context, repoID, rev string, files []string, opts Options) (snapshotDir string, err error) {
	if rev == "" {
		rev = "main"
	}
	if len(files) == 0 {
		files = DefaultFiles
	}
	if err := checkRepoID(repoID); err != nil {
		return "", err
	}
	if err := checkRev(rev); err != nil {
		return "", err
	}
	for _, f := range files {
		if err := checkFile(f); err != nil {
			return "", err
		}
	}
	opts = opts.withDefaults()
	repo := RepoDir(opts.CacheDir, repoID)
	hint := manualHint(repoID, files, opts.CacheDir)

	if opts.Offline || envTrue("HF_HUB_OFFLINE") {
		snap, missing, err := fromCache(repo, rev, files)
		if err != nil {
			return "", fmt.Errorf("hfhub: %s@%s: %w (HF_HUB_OFFLINE is set): %v; %s", repoID, rev, ErrOffline, err, hint)
		}
		if missing != "" {
			return "", fmt.Errorf("hfhub: %s@%s: %w (HF_HUB_OFFLINE is set) and %s is not in the cache %s; %s", repoID, rev, ErrOffline, missing, repo, hint)
		}
		return snap, nil
	}

	d := &downloader{opts: opts, repoID: repoID, repo: repo, hint: hint}
	commit := ""
	for _, f := range files {
		r := rev
		if commit != "" {
			r = commit // pin the rest to the first file's commit
		}
		meta, err := d.head(ctx, r, f)
		if err != nil {
			return "", err
		}
		if commit == "" {
			commit = meta.commit
		} else if meta.commit != commit {
			return "", fmt.Errorf("hfhub: %s: %s resolved to commit %s, want %s", repoID, f, meta.commit, commit)
		}
		blob := filepath.Join(repo, "blobs", meta.etag)
		if _, err := os.Stat(blob); err != nil {
			if err := d.fetchLocked(ctx, f, meta, blob); err != nil {
				return "", err
			}
		}
		if err := linkSnapshot(repo, commit, f, meta.etag); err != nil {
			return "", err
		}
	}
	if rev != commit {
		if err := writeRef(repo, rev, commit); err != nil {
			return "", err
		}
	}
	return filepath.Join(repo, "snapshots", commit), nil
}

// withDefaults fills the zero fields of o from the environment and the
// package defaults.
func (o Options) withDefaults() Options {
	if o.CacheDir == "" {
		o.CacheDir = CacheDir()
	}
	if o.Endpoint == "" {
		o.Endpoint = os.Getenv("HF_ENDPOINT")
	}
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	o.Endpoint = strings.TrimRight(o.Endpoint, "/")
	if o.Token == "" {
		o.Token = envToken()
	}
	if o.Retries == 0 {
		o.Retries = 3
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.Client == nil {
		o.Client = defaultClient()
	}
	return o
}

func defaultClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 60 * time.Second
	tr.DisableCompression = true
	return &http.Client{Transport: tr}
}

// fromCache resolves rev to a snapshot without the network; missing names
// the first file absent from it.
func fromCache(repo, rev string, files []string) (snap, missing string, err error) {
	commit := rev
	if !commitRe.MatchString(rev) {
		b, err := os.ReadFile(filepath.Join(repo, "refs", filepath.FromSlash(rev)))
		if err != nil {
			return "", "", fmt.Errorf("revision %s is not in the cache (%v)", rev, err)
		}
		commit = strings.TrimSpace(string(b))
		if !commitRe.MatchString(commit) {
			return "", "", fmt.Errorf("refs/%s holds %q, not a commit", rev, commit)
		}
	}
	snap = filepath.Join(repo, "snapshots", commit)
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(snap, filepath.FromSlash(f))); err != nil {
			return snap, f, nil
		}
	}
	return snap, "", nil
}

type downloader struct {
	opts   Options
	repoID string
	repo   string
	hint   string
}

func (d *downloader) resolveURL(rev, file string) string {
	esc := func(s string) string {
		parts := strings.Split(s, "/")
		for i, p := range parts {
			parts[i] = url.PathEscape(p)
		}
		return strings.Join(parts, "/")
	}
	return d.opts.Endpoint + "/" + d.repoID + "/resolve/" + url.PathEscape(rev) + "/" + esc(file)
}

// sameHost reports whether u is on the endpoint's host, so the token may go there.
func (d *downloader) sameHost(u *url.URL) bool {
	ep, err := url.Parse(d.opts.Endpoint)
	return err == nil && strings.EqualFold(ep.Host, u.Host) && ep.Scheme == u.Scheme
}

func (d *downloader) request(ctx context.Context, method, rawURL string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("hfhub: %w", err)
	}
	req.Header.Set("User-Agent", "gomps-hfhub/1")
	req.Header.Set("Accept-Encoding", "identity")
	if d.opts.Token != "" && d.sameHost(req.URL) {
		req.Header.Set("Authorization", "Bearer "+d.opts.Token)
	}
	return req, nil
}

// statusError turns a failed response into a clear error.
func (d *downloader) statusError(file string, resp *http.Response) error {
	code := resp.Header.Get("X-Error-Code")
	msg := resp.Header.Get("X-Error-Message")
	if msg != "" {
		msg = " (" + msg + ")"
	}
	where := fmt.Sprintf("hfhub: %s: %s", d.repoID, file)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || code == "GatedRepo":
		how := "set HF_TOKEN to a token with access"
		if d.opts.Token != "" {
			how = "the token in use (HF_TOKEN) has no access; accept the repository's terms on the Hub or use another token"
		}
		return fmt.Errorf("%s: %w: HTTP %d%s%s; %s; or %s", where, ErrUnauthorized, resp.StatusCode, codeSuffix(code), msg, how, d.hint)
	case resp.StatusCode == http.StatusNotFound:
		what := "file or repository"
		switch code {
		case "RepoNotFound":
			what = "repository"
		case "RevisionNotFound":
			what = "revision"
		case "EntryNotFound":
			what = "file"
		}
		return fmt.Errorf("%s: %w: the %s does not exist on %s (HTTP 404%s)%s; %s", where, ErrNotFound, what, d.opts.Endpoint, codeSuffix(code), msg, d.hint)
	}
	return fmt.Errorf("%s: HTTP %d%s from %s%s; %s", where, resp.StatusCode, codeSuffix(code), resp.Request.URL.Host, msg, d.hint)
}

func codeSuffix(code string) string {
	if code == "" {
		return ""
	}
	return ", " + code
}

func normalizeEtag(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	return strings.Trim(s, `"`)
}

// head asks the Hub for a file's commit, etag, size and download URL.
func (d *downloader) head(ctx context.Context, rev, file string) (*fileMeta, error) {
	u := d.resolveURL(rev, file)
	client := *d.opts.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for hop := 0; ; hop++ {
		req, err := d.request(ctx, http.MethodHead, u)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("hfhub: %s: %s: %w; %s", d.repoID, file, err, d.hint)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			loc, err := resp.Location()
			if err != nil {
				return nil, fmt.Errorf("hfhub: %s: %s: redirect without a valid Location: %v", d.repoID, file, err)
			}
			if d.sameHost(loc) && resp.Header.Get("X-Repo-Commit") == "" {
				// A relative redirect (renamed repository): follow it.
				if hop >= 5 {
					return nil, fmt.Errorf("hfhub: %s: %s: too many redirects", d.repoID, file)
				}
				u = loc.String()
				continue
			}
			return d.meta(file, resp, loc.String())
		}
		if resp.StatusCode != http.StatusOK {
			return nil, d.statusError(file, resp)
		}
		return d.meta(file, resp, u)
	}
}

func (d *downloader) meta(file string, resp *http.Response, getURL string) (*fileMeta, error) {
	m := &fileMeta{
		commit: resp.Header.Get("X-Repo-Commit"),
		etag:   normalizeEtag(resp.Header.Get("X-Linked-Etag")),
		size:   -1,
		getURL: getURL,
	}
	if m.etag == "" {
		m.etag = normalizeEtag(resp.Header.Get("ETag"))
	}
	sz := resp.Header.Get("X-Linked-Size")
	if sz == "" && resp.StatusCode == http.StatusOK {
		sz = resp.Header.Get("Content-Length")
	}
	if n, err := strconv.ParseInt(sz, 10, 64); err == nil && n >= 0 {
		m.size = n
	}
	if !commitRe.MatchString(m.commit) {
		return nil, fmt.Errorf("hfhub: %s: %s: the server sent no valid X-Repo-Commit (%q); is %s a Hugging Face Hub?", d.repoID, file, m.commit, d.opts.Endpoint)
	}
	if resp.Header.Get("X-Linked-Etag") != "" && !sha256Re.MatchString(m.etag) {
		return nil, fmt.Errorf("hfhub: %s: %s: X-Linked-Etag %q is not a sha256", d.repoID, file, m.etag)
	}
	if !etagRe.MatchString(m.etag) || m.etag == "." || m.etag == ".." {
		return nil, fmt.Errorf("hfhub: %s: %s: the server sent no usable ETag (%q); is %s a Hugging Face Hub?", d.repoID, file, m.etag, d.opts.Endpoint)
	}
	if !sha256Re.MatchString(m.etag) && !commitRe.MatchString(m.etag) && !d.opts.TrustUnverified {
		return nil, fmt.Errorf("hfhub: %s: %s: %w: %s names it by the ETag %q, which is neither a sha256 (LFS) nor a git blob sha1; "+
			"accept it on its size alone with --trust-unverified (Options.TrustUnverified), or %s", d.repoID, file, ErrUnverified, d.opts.Endpoint, m.etag, d.hint)
	}
	return m, nil
}

// fetchLocked fetches a blob under a lock file in {cache}/.locks, as
// huggingface_hub does, unless another downloader finished it meanwhile.
func (d *downloader) fetchLocked(ctx context.Context, file string, m *fileMeta, blob string) error {
	unlock, err := lockFile(ctx, filepath.Join(filepath.Dir(d.repo), ".locks", filepath.Base(d.repo), m.etag+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(blob); err == nil {
		return nil
	}
	return d.fetch(ctx, file, m, blob)
}

// fetch downloads a file into blob via blob.incomplete, resuming it, and
// verifies it against the etag.
func (d *downloader) fetch(ctx context.Context, file string, m *fileMeta, blob string) error {
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return fmt.Errorf("hfhub: %w", err)
	}
	inc := blob + ".incomplete"
	var lastErr error
	for attempt := 0; attempt <= d.opts.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("hfhub: %s: %s: %w", d.repoID, file, ctx.Err())
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		retryable, err := d.get(ctx, file, m, inc)
		if err == nil {
			break
		}
		lastErr = err
		var perm *permanentError
		if errors.As(err, &perm) || ctx.Err() != nil || !retryable {
			return perm.unwrap(err)
		}
		if attempt == d.opts.Retries {
			return fmt.Errorf("hfhub: %s: %s: download failed after %d attempts: %w; %s", d.repoID, file, attempt+1, lastErr, d.hint)
		}
	}
	if err := verify(inc, m); err != nil {
		os.Remove(inc)
		return fmt.Errorf("hfhub: %s: %s: %w; the partial download was removed, retry", d.repoID, file, err)
	}
	if err := os.Rename(inc, blob); err != nil {
		return fmt.Errorf("hfhub: %w", err)
	}
	return nil
}

// errStalled ends a request that received nothing for StallTimeout.
var errStalled = errors.New("hfhub: stalled")

// permanentError marks a failure that retrying will not fix.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }

func (p *permanentError) Unwrap() error { return p.err }

func (p *permanentError) unwrap(err error) error {
	if p != nil {
		return p.err
	}
	return err
}

// get performs one GET into inc, appending from its current size. retryable
// is true when the transfer broke after a response started, so a resume may
// succeed.
func (d *downloader) get(ctx context.Context, file string, m *fileMeta, inc string) (retryable bool, err error) {
	f, err := os.OpenFile(inc, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return false, &permanentError{fmt.Errorf("hfhub: %w", err)}
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, &permanentError{fmt.Errorf("hfhub: %w", err)}
	}
	if m.size >= 0 && have > m.size {
		if err := f.Truncate(0); err != nil {
			return false, &permanentError{fmt.Errorf("hfhub: %w", err)}
		}
		have, _ = f.Seek(0, io.SeekStart)
	}
	if m.size >= 0 && have == m.size {
		return false, nil // complete already; verify decides
	}
	// The request ends when no bytes come for StallTimeout: a timer that
	// every read resets.
	rctx, stall := context.WithCancelCause(ctx)
	defer stall(nil)
	timer := time.AfterFunc(d.opts.StallTimeout, func() { stall(errStalled) })
	defer timer.Stop()
	stalled := func(have int64, err error) error {
		return fmt.Errorf("hfhub: %s: %s: nothing received for %v after %d bytes (%v)", d.repoID, file, d.opts.StallTimeout, have, err)
	}
	req, err := d.request(rctx, http.MethodGet, m.getURL)
	if err != nil {
		return false, &permanentError{err}
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return false, &permanentError{fmt.Errorf("hfhub: %s: %s: %w", d.repoID, file, ctx.Err())}
		case context.Cause(rctx) == errStalled:
			return true, stalled(have, err)
		}
		return true, fmt.Errorf("hfhub: %s: %s: %w", d.repoID, file, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != have {
			return false, &permanentError{fmt.Errorf("hfhub: %s: %s: server resumed at the wrong offset (Content-Range %q, want %d)", d.repoID, file, resp.Header.Get("Content-Range"), have)}
		}
	case resp.StatusCode == http.StatusOK:
		if have > 0 { // no range support: start over
			if err := f.Truncate(0); err != nil {
				return false, &permanentError{fmt.Errorf("hfhub: %w", err)}
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return false, &permanentError{fmt.Errorf("hfhub: %w", err)}
			}
			have = 0
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		f.Truncate(0) // the partial file does not fit the remote file; restart
		return true, fmt.Errorf("hfhub: %s: %s: partial download does not match the remote file", d.repoID, file)
	default:
		return false, &permanentError{d.statusError(file, resp)}
	}
	have, retryable, err = d.copyBody(ctx, rctx, f, resp.Body, file, m.size, have, inc, timer, stalled)
	if err != nil {
		return retryable, err
	}
	if err := f.Sync(); err != nil {
		return false, &permanentError{fmt.Errorf("hfhub: %w", err)}
	}
	if total := m.size; total >= 0 && have < total {
		return true, fmt.Errorf("hfhub: %s: %s: got %d of %d bytes", d.repoID, file, have, total)
	}
	return false, nil
}

// copyBody appends body to f from offset have, no further than the
// advertised size (maxUnsizedBytes when none), resetting the stall timer at
// every read; it returns the new size. A body past the size removes inc.
func (d *downloader) copyBody(ctx, rctx context.Context, f *os.File, body io.Reader, file string, total, have int64, inc string,
	timer *time.Timer, stalled func(int64, error) error) (int64, bool, error) {
	limit := total
	if limit < 0 {
		limit = maxUnsizedBytes
	}
	buf := make([]byte, 256<<10)
	for {
		n, rerr := body.Read(buf)
		timer.Reset(d.opts.StallTimeout)
		if n > 0 {
			if have+int64(n) > limit {
				os.Remove(inc) // what came is not the file
				return have, false, &permanentError{fmt.Errorf("hfhub: %s: %s: %w: the server sent more than %d bytes; the partial download was removed", d.repoID, file, ErrTooLarge, limit)}
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return have, false, &permanentError{fmt.Errorf("hfhub: %w", err)}
			}
			have += int64(n)
			if d.opts.Progress != nil {
				d.opts.Progress(Progress{File: file, Done: have, Total: total})
			}
		}
		switch {
		case rerr == io.EOF:
			return have, false, nil
		case rerr == nil:
		case ctx.Err() != nil:
			return have, false, &permanentError{fmt.Errorf("hfhub: %s: %s: %w", d.repoID, file, ctx.Err())}
		case context.Cause(rctx) == errStalled:
			return have, true, stalled(have, rerr)
		default:
			return have, true, fmt.Errorf("hfhub: %s: %s: connection broke after %d bytes: %w", d.repoID, file, have, rerr)
		}
	}
}

func rangeStart(cr string) (int64, bool) {
	// "bytes START-END/TOTAL"
	rest, ok := strings.CutPrefix(strings.TrimSpace(cr), "bytes ")
	if !ok {
		return 0, false
	}
	s, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// verify checks a downloaded file against its size and etag: the sha256 of
// an LFS file, or the git blob sha1 ("blob <size>\x00" + content) of a small
// one. An etag of another form (a mirror's, accepted only with
// TrustUnverified) is not a hash: the size is all there is to check.
func verify(p string, m *fileMeta) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if m.size >= 0 && st.Size() != m.size {
		return fmt.Errorf("%w: size %d, want %d", ErrChecksum, st.Size(), m.size)
	}
	var h hash.Hash
	kind := "sha256"
	switch {
	case sha256Re.MatchString(m.etag):
		h = sha256.New()
	case commitRe.MatchString(m.etag):
		kind = "git sha1"
		h = sha1.New()
		fmt.Fprintf(h, "blob %d\x00", st.Size())
	default:
		return nil // an etag that names no hash (some mirrors): the size check is all there is
	}
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.etag {
		return fmt.Errorf("%w: %s %s, the Hub says %s", ErrChecksum, kind, got, m.etag)
	}
	return nil
}

// linkSnapshot points snapshots/<commit>/<file> at blobs/<etag> with a
// relative symlink, replacing any previous link atomically.
func linkSnapshot(repo, commit, file, etag string) error {
	link := filepath.Join(repo, "snapshots", commit, filepath.FromSlash(file))
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return fmt.Errorf("hfhub: %w", err)
	}
	target, err := filepath.Rel(filepath.Dir(link), filepath.Join(repo, "blobs", etag))
	if err != nil {
		return fmt.Errorf("hfhub: %w", err)
	}
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	tmp := tempName(link)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("hfhub: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("hfhub: %w", err)
	}
	return nil
}

// tempName returns a name beside p that concurrent writers do not share.
func tempName(p string) string {
	var b [6]byte
	rand.Read(b[:])
	return p + ".tmp-" + hex.EncodeToString(b[:])
}

// writeRef records that rev resolved to commit.
func writeRef(repo, rev, commit string) error {
	ref := filepath.Join(repo, "refs", filepath.FromSlash(rev))
	if b, err := os.ReadFile(ref); err == nil && strings.TrimSpace(string(b)) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(ref), 0o755); err != nil {
		return fmt.Errorf("hfhub: %w", err)
	}
	tmp := tempName(ref)
	if err := os.WriteFile(tmp, []byte(commit), 0o644); err != nil {
		return fmt.Errorf("hfhub: %w", err)
	}
	if err := os.Rename(tmp, ref); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("hfhub: %w", err)
	}
	return nil
}
