// Package cpus says how many CPUs this process may use: the CPUs its
// affinity mask allows, bounded by the CPU quota of its cgroup (Linux
// cgroup v2 cpu.max or v1 cpu.cfs_quota_us, the smallest along the path to
// the root), rounded up. It is the default thread budget of gomps.
package cpus

import (
	"bufio"
	"bytes"
	"io/fs"
	"math"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

var (
	once  sync.Once
	count int
)

// Available is the number of CPUs this process may use, at least 1. It is
// read once: runtime.NumCPU (the affinity mask at start-up) bounded by the
// cgroup quota.
func Available() int {
	once.Do(func() {
		count = runtime.NumCPU()
		if runtime.GOOS != "linux" {
			return
		}
		self, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			return
		}
		if q, ok := Quota(os.DirFS("/"), self); ok {
			count = Bound(count, q)
		}
	})
	return count
}

// Bound is n CPUs under a quota of q CPUs (rounded up, at least 1).
func Bound(n int, q float64) int {
	return max(1, min(n, int(math.Ceil(q-1e-9))))
}

// Quota is the smallest CPU quota (in CPUs) on the cgroup path of a process
// whose /proc/self/cgroup is self, with the cgroup file systems mounted at
// sys/fs/cgroup of root; ok is false where no quota is set.
func Quota(root fs.FS, self []byte) (q float64, ok bool) {
	q = math.Inf(1)
	sc := bufio.NewScanner(bytes.NewReader(self))
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case f[0] == "0" && f[1] == "": // cgroup v2
			q = min(q, walk(root, "sys/fs/cgroup", f[2], v2Quota))
		case hasController(f[1], "cpu"): // cgroup v1
			for _, mnt := range []string{"sys/fs/cgroup/cpu,cpuacct", "sys/fs/cgroup/cpu"} {
				if _, err := fs.Stat(root, mnt); err == nil {
					q = min(q, walk(root, mnt, f[2], v1Quota))
					break
				}
			}
		}
	}
	return q, !math.IsInf(q, 1)
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// walk returns the smallest quota read by read in dir and each of its
// parents up to the mount point (+Inf where none is set). A container sees
// its own cgroup as "/", so the mount point itself is always read.
func walk(root fs.FS, mnt, dir string, read func(fs.FS, string) float64) float64 {
	q := math.Inf(1)
	for d := path.Clean("/" + dir); ; d = path.Dir(d) {
		q = min(q, read(root, path.Join(mnt, d)))
		if d == "/" {
			return q
		}
	}
}

// v2Quota reads cpu.max ("max 100000" or "quota period").
func v2Quota(root fs.FS, dir string) float64 {
	b, err := fs.ReadFile(root, path.Join(dir, "cpu.max"))
	if err != nil {
		return math.Inf(1)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return math.Inf(1)
	}
	return ratio(f[0], f[1])
}

// v1Quota reads cpu.cfs_quota_us (-1: none) and cpu.cfs_period_us.
func v1Quota(root fs.FS, dir string) float64 {
	qb, err1 := fs.ReadFile(root, path.Join(dir, "cpu.cfs_quota_us"))
	pb, err2 := fs.ReadFile(root, path.Join(dir, "cpu.cfs_period_us"))
	if err1 != nil || err2 != nil {
		return math.Inf(1)
	}
	return ratio(strings.TrimSpace(string(qb)), strings.TrimSpace(string(pb)))
}

func ratio(quota, period string) float64 {
	qv, err1 := strconv.ParseFloat(quota, 64)
	pv, err2 := strconv.ParseFloat(period, 64)
	if err1 != nil || err2 != nil || qv <= 0 || pv <= 0 {
		return math.Inf(1)
	}
	return qv / pv
}
