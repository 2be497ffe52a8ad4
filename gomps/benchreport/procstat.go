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
