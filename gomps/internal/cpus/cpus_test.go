package cpus

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuota(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	dir := &fstest.MapFile{Mode: 0o755 | 1<<31}
	for _, tc := range []struct {
		name  string
		fs    fstest.MapFS
		self  string
		quota float64
		ok    bool
	}{
		{"v2/none", fstest.MapFS{"sys/fs/cgroup/cpu.max": file("max 100000\n")}, "0::/\n", 0, false},
		{"v2/container-root", fstest.MapFS{"sys/fs/cgroup/cpu.max": file("150000 100000\n")}, "0::/\n", 1.5, true},
		{"v2/nested-smallest", fstest.MapFS{
			"sys/fs/cgroup/cpu.max":             file("max 100000\n"),
			"sys/fs/cgroup/a/cpu.max":           file("300000 100000\n"),
			"sys/fs/cgroup/a/b/cpu.max":         file("max 100000\n"),
			"sys/fs/cgroup/a/b/c.scope/cpu.max": file("max 100000\n"),
		}, "0::/a/b/c.scope\n", 3, true},
		{"v2/missing-files", fstest.MapFS{}, "0::/x/y\n", 0, false},
		{"v2/garbage", fstest.MapFS{"sys/fs/cgroup/cpu.max": file("lots\n")}, "0::/\n", 0, false},
		{"v1/quota", fstest.MapFS{
			"sys/fs/cgroup/cpu,cpuacct":                          dir,
			"sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_quota_us":  file("50000\n"),
			"sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_period_us": file("100000\n"),
		}, "12:memory:/docker\n4:cpu,cpuacct:/docker\n", 0.5, true},
		{"v1/unlimited", fstest.MapFS{
			"sys/fs/cgroup/cpu,cpuacct":                   dir,
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":  file("-1\n"),
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": file("100000\n"),
		}, "4:cpu,cpuacct:/\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, ok := Quota(tc.fs, []byte(tc.self))
			assert.Equal(t, tc.ok, ok)
			if tc.ok {
				assert.InDelta(t, tc.quota, q, 1e-9)
			}
		})
	}
}

func TestBound(t *testing.T) {
	assert.Equal(t, 2, Bound(8, 1.5), "a quota of 1.5 CPUs rounds up")
	assert.Equal(t, 4, Bound(4, 16), "affinity below the quota")
	assert.Equal(t, 1, Bound(8, 0.2), "at least one")
	assert.Equal(t, 3, Bound(8, 3), "an exact quota")
}

// TestAvailable: pinned by its affinity mask to one CPU, a process counts 1.
func TestAvailable(t *testing.T) {
	if os.Getenv("GOMPS_TEST_CPUS_CHILD") == "1" {
		fmt.Println("available", Available())
		return
	}
	assert.GreaterOrEqual(t, Available(), 1)
	assert.Equal(t, Available(), Available(), "read once")
	taskset, err := exec.LookPath("taskset")
	require.NoError(t, err, "taskset (util-linux) is needed to test the affinity mask")
	cmd := exec.Command(taskset, "-c", "0", os.Args[0], "-test.run=^TestAvailable$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GOMPS_TEST_CPUS_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "available 1\n")
}
