package benchreport

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// ProcessCPU returns the process's CPU time so far, user plus system, from
// getrusage(RUSAGE_SELF): every thread, native (OpenMP) ones included.
func ProcessCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// Memory is the process's resident memory as the OS reports it.
type Memory struct {
	RSS int64 // VmRSS, bytes
	HWM int64 // VmHWM, the peak RSS over the process's life, bytes
}

// ReadMemory reads VmRSS and VmHWM from /proc/self/status (Linux only).
func ReadMemory() (Memory, error) {
	if runtime.GOOS != "linux" {
		return Memory{}, fmt.Errorf("no /proc/self/status on %s", runtime.GOOS)
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return Memory{}, err
	}
	return parseStatus(b)
}

// parseStatus reads the VmRSS and VmHWM lines ("VmRSS:\t  123456 kB").
func parseStatus(b []byte) (Memory, error) {
	m := Memory{RSS: -1, HWM: -1}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(key) {
		case "VmRSS":
			dst = &m.RSS
		case "VmHWM":
			dst = &m.HWM
		default:
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return Memory{}, fmt.Errorf("/proc/self/status: malformed %s line %q", key, sc.Bytes())
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("/proc/self/status: %s: %w", key, err)
		}
		*dst = kb << 10
	}
	if m.RSS < 0 || m.HWM < 0 {
		return Memory{}, fmt.Errorf("/proc/self/status: no VmRSS or VmHWM line")
	}
	return m, nil
}

// SysCPU is a reading of the machine's CPU time from /proc/stat (the "cpu"
// line, summed over every CPU) and of this process's from /proc/self/stat,
// all in clock ticks, so shares need no tick rate.
type SysCPU struct {
	Total uint64 // every field of the cpu line: the capacity elapsed
	Busy  uint64 // user + nice + system + irq + softirq (guest time is inside user)
	Steal uint64 // time the hypervisor ran something else while a CPU wanted to run
	Own   uint64 // this process: utime + stime
}

// ReadSysCPU reads /proc/stat and /proc/self/stat (Linux only).
func ReadSysCPU() (SysCPU, error) {
	if runtime.GOOS != "linux" {
		return SysCPU{}, fmt.Errorf("no /proc/stat on %s", runtime.GOOS)
	}
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return SysCPU{}, err
	}
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return SysCPU{}, err
	}
	return parseSysCPU(stat, self)
}

// parseSysCPU reads the "cpu" line of /proc/stat (user nice system idle
// iowait irq softirq steal guest guest_nice; older kernels stop earlier) and
// fields 14 and 15 (utime, stime) of /proc/self/stat, counted after the
// command name's closing parenthesis.
func parseSysCPU(stat, self []byte) (SysCPU, error) {
	var s SysCPU
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return SysCPU{}, fmt.Errorf("/proc/stat: first line %q is not the cpu line", line)
	}
	var v [10]uint64
	for i := 1; i < len(f) && i <= len(v); i++ {
		n, err := strconv.ParseUint(string(f[i]), 10, 64)
		if err != nil {
			return SysCPU{}, fmt.Errorf("/proc/stat: cpu field %d: %w", i, err)
		}
		v[i-1] = n
	}
	// guest and guest_nice are already counted in user and nice.
	s.Total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7]
	s.Busy = v[0] + v[1] + v[2] + v[5] + v[6]
	s.Steal = v[7]
	i := bytes.LastIndexByte(self, ')')
	if i < 0 {
		return SysCPU{}, fmt.Errorf("/proc/self/stat: no command name")
	}
	g := bytes.Fields(self[i+1:]) // g[0] is field 3 (state)
	if len(g) < 13 {
		return SysCPU{}, fmt.Errorf("/proc/self/stat: %d fields after the command name, want at least 13", len(g))
	}
	for _, k := range []int{11, 12} { // fields 14 (utime) and 15 (stime)
		n, err := strconv.ParseUint(string(g[k]), 10, 64)
		if err != nil {
			return SysCPU{}, fmt.Errorf("/proc/self/stat: field %d: %w", k+3, err)
		}
		s.Own += n
	}
	return s, nil
}

// Contention thresholds: a report warns when, over a measured phase, other
// processes used more than MaxOtherCPUShare of the machine's CPU time, or
// the hypervisor stole more than MaxStealShare of it.
const (
	MaxOtherCPUShare = 0.10
	MaxStealShare    = 0.05
)

// Contention is how much of the machine's CPU time, over a phase, went to
// other processes and to steal.
type Contention struct {
	Known      bool
	Reason     string  // why not Known
	OtherShare float64 // (busy - this process) / capacity, in [0, 1]
	StealShare float64 // steal / capacity
}

// Contended reports whether a share passes its threshold.
func (c Contention) Contended() bool {
	return c.Known && (c.OtherShare > MaxOtherCPUShare || c.StealShare > MaxStealShare)
}

// contentionOf compares two readings.
func contentionOf(a, b SysCPU) Contention {
	if b.Total <= a.Total || b.Busy < a.Busy || b.Own < a.Own || b.Steal < a.Steal {
		return Contention{Reason: "no CPU time elapsed between the readings"}
	}
	total := float64(b.Total - a.Total)
	other := float64(b.Busy-a.Busy) - float64(b.Own-a.Own)
	return Contention{Known: true, OtherShare: max(other, 0) / total, StealShare: float64(b.Steal-a.Steal) / total}
}
