//go:build unix

package pairio

import (
	"os"
	"syscall"
)

// lockTemp takes an exclusive advisory lock (flock) on a temporary file for
// as long as its writer lives: the kernel drops it when the file is closed
// or the process dies.
func lockTemp(f *os.File) { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) }

// abandoned reports whether no live writer holds path's lock.
func abandoned(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
