package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is one `gomps serve` process on a loopback port.
type child struct {
	cmd    *exec.Cmd
	addr   string // host:port
	base   string // http://host:port
	logs   *lineLog
	exited chan struct{}
	err    error // cmd.Wait's result, set before exited closes
}

// lineLog keeps a child's stderr lines.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) < 100000 {
		l.lines = append(l.lines, s)
	}
}

func (l *lineLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// startServe starts bin serve on 127.0.0.1:0 with args and waits until
// /health answers 200 (at most a minute).
func startServe(bin string, args ...string) (*child, error) {
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, logs: &lineLog{}, exited: make(chan struct{})}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			c.logs.add(line)
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				select {
				case addrCh <- rec.Addr:
				default:
				}
			}
		}
	}()
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	select {
	case c.addr = <-addrCh:
	case <-c.exited:
		return nil, fmt.Errorf("gomps serve exited before listening: %v\n%s", c.err, strings.Join(c.logs.all(), "\n"))
	case <-time.After(time.Minute):
		c.kill()
		return nil, fmt.Errorf("gomps serve did not log its address within a minute")
	}
	c.base = "http://" + c.addr
	return c, c.waitHealthy()
}

// waitHealthy waits until /health answers 200 (at most a minute); on
// failure the child is gone.
func (c *child) waitHealthy() error {
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(c.base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			c.kill()
			return fmt.Errorf("gomps serve: /health not 200 within a minute")
		}
		select {
		case <-c.exited:
			return fmt.Errorf("gomps serve exited while loading: %v\n%s", c.err, strings.Join(c.logs.all(), "\n"))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// stop sends SIGTERM and waits up to d for the exit; it returns the exit
// code (-1 if killed after d).
func (c *child) stop(d time.Duration) int {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(d):
		c.kill()
		return -1
	}
	return c.cmd.ProcessState.ExitCode()
}

// metrics scrapes /metrics into name{labels} -> value.
func (c *child) metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: HTTP %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// info reads /info.
func (c *child) info() (map[string]any, error) {
	resp, err := http.Get(c.base + "/info")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	return m, json.NewDecoder(resp.Body).Decode(&m)
}

func (c *child) infoInt(key string) int {
	m, err := c.info()
	if err != nil {
		return 0
	}
	f, _ := m[key].(float64)
	return int(f)
}

// footprint is the server's memory and goroutines at one moment.
type footprint struct {
	heapLive   float64 // go_gc_heap_live_bytes: live heap at the last GC
	goroutines float64
	rss        float64
}

func (f footprint) String() string {
	return fmt.Sprintf("heap live %.1f MiB, %d goroutines, RSS %.0f MiB", f.heapLive/(1<<20), int(f.goroutines), f.rss/(1<<20))
}

// settle waits until no request is in flight (but the scrape) and the
// goroutines stop falling, makes the server collect garbage (sequential
// bodies at the body limit that it reads and refuses, enough allocation
// for several GC cycles), then reads the footprint. Bounded by a minute.
func (c *child) settle(cl *client, maxBody int) (footprint, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl.hc.CloseIdleConnections()
	garbage := append([]byte(`{"query":"q","texts":["`), make([]byte, maxBody-64)...)
	for i := 23; i < len(garbage); i++ {
		garbage[i] = 'x'
	}
	for range 48 {
		if ctx.Err() != nil {
			break
		}
		res := cl.post(ctx, c.base+"/rerank", "application/json", garbage) // unterminated: 422
		if res.status != http.StatusUnprocessableEntity {
			return footprint{}, fmt.Errorf("settle: a garbage body got %s, want 422", res)
		}
	}
	cl.hc.CloseIdleConnections()
	prev := math.Inf(1)
	for ctx.Err() == nil {
		m, err := c.metrics(ctx)
		if err != nil {
			return footprint{}, err
		}
		g := m["go_goroutines"]
		if m["gomps_http_requests_in_flight"] <= 1 && g >= prev {
			return footprint{heapLive: m["go_gc_heap_live_bytes"], goroutines: g, rss: m["process_resident_memory_bytes"]}, nil
		}
		prev = g
		time.Sleep(300 * time.Millisecond)
	}
	return footprint{}, fmt.Errorf("settle: the server did not quiesce within a minute")
}
