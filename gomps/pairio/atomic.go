package pairio

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Output is a destination written in full or not at all.
type Output interface {
	io.Writer
	// Commit makes the written bytes the destination's content.
	Commit() error
	// Abort discards what was written; the destination is left as it was.
	// Abort after Commit does nothing. Both are idempotent.
	Abort() error
}

// AtomicFile writes a file through a temporary file in the same directory:
// Commit syncs it, renames it over the target and syncs the directory, so
// after a crash at any point the target holds its old content or the new
// content in full (or does not exist if it did not before). A crash can leave
// the temporary file (named .<target>.tmp-<random>) behind; the next
// CreateAtomic of the same target removes it (on Unix: the writer holds a
// flock on its temporary file, so one whose lock is free and that is a
// minute old has no writer left).
type AtomicFile struct {
	mu     sync.Mutex
	f      *os.File
	path   string
	done   bool
	commit bool
}

var _ Output = (*AtomicFile)(nil)

// CreateAtomic starts writing path. A new file gets mode 0666 less the umask;
// an existing one keeps its mode.
func CreateAtomic(path string) (*AtomicFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	perm := fs.FileMode(0o666)
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file", path)
		}
		perm = st.Mode().Perm()
	}
	removeAbandoned(dir, base)
	for range 10 {
		var r [6]byte
		if _, err := rand.Read(r[:]); err != nil {
			return nil, err
		}
		tmp := filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(r[:]))
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create output: %w", err)
		}
		lockTemp(f)
		if st, err := os.Stat(path); err == nil {
			_ = f.Chmod(st.Mode().Perm()) // umask may have narrowed it
		}
		return &AtomicFile{f: f, path: path}, nil
	}
	return nil, fmt.Errorf("create output %s: no free temporary name", path)
}

// abandonedAge is how old a temporary file must be before it can be taken
// for abandoned: its writer creates and locks it within that time.
const abandonedAge = time.Minute

// removeAbandoned removes the temporary files of base in dir that no live
// writer holds.
func removeAbandoned(dir, base string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+".tmp-*"))
	for _, m := range matches {
		if st, err := os.Lstat(m); err == nil && st.Mode().IsRegular() && time.Since(st.ModTime()) > abandonedAge && abandoned(m) {
			_ = os.Remove(m)
		}
	}
}

// globEscape quotes the pattern characters of a file name.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// TempName returns the temporary file's path.
func (a *AtomicFile) TempName() string { return a.f.Name() }

// Write implements io.Writer.
func (a *AtomicFile) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done {
		return 0, fmt.Errorf("write to %s after commit or abort", a.path)
	}
	return a.f.Write(p)
}

// Commit implements Output.
func (a *AtomicFile) Commit() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done {
		if a.commit {
			return nil
		}
		return fmt.Errorf("commit of %s after abort", a.path)
	}
	a.done = true
	tmp := a.f.Name()
	err := a.f.Sync()
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, a.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("commit %s: %w", a.path, err)
	}
	a.commit = true
	if d, err := os.Open(filepath.Dir(a.path)); err == nil {
		err = d.Sync() // make the rename durable; not every file system supports it
		d.Close()
		_ = err
	}
	return nil
}

// Abort implements Output.
func (a *AtomicFile) Abort() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done {
		return nil
	}
	a.done = true
	tmp := a.f.Name()
	a.f.Close()
	if err := os.Remove(tmp); err != nil {
		return fmt.Errorf("abort %s: %w", a.path, err)
	}
	return nil
}
