//go:build cgo

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/gomps/gomps/gomps"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{{"2097152", 2 << 20}, {"2MiB", 2 << 20}, {"512 KiB", 512 << 10}, {"1GiB", 1 << 30}, {"3MB", 3e6}, {"10KB", 10e3}, {"100B", 100}} {
		got, err := parseSize(c.in)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
	}
	for _, bad := range []string{"", "0", "-1", "2XB", "MiB", "1.5MiB", "9999999GiB"} {
		_, err := parseSize(bad)
		assert.Error(t, err, bad)
	}
}

// Every flag has a GOMPS_* variable and a usage line, and --help shows both.
func TestServeFlagsHaveEnvAndHelp(t *testing.T) {
	cmd := newServeCommand()
	app := newApp()
	app.Commands = []*cli.Command{cmd}
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	require.NoError(t, app.Run([]string{"gomps", "serve", "--help"}))
	help := out.String()
	for _, f := range cmd.Flags {
		name := f.Names()[0]
		if name == "help" {
			continue // urfave/cli's own
		}
		ef, ok := f.(interface{ GetEnvVars() []string })
		require.True(t, ok, name)
		env := ef.GetEnvVars()
		require.Len(t, env, 1, name)
		assert.Equal(t, "GOMPS_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_")), env[0], "env var of --%s", name)
		uf, ok := f.(interface{ GetUsage() string })
		require.True(t, ok, name)
		assert.NotEmpty(t, uf.GetUsage(), name)
		assert.Contains(t, help, "--"+name, "help shows --%s", name)
		assert.Contains(t, help, env[0], "help shows %s", env[0])
	}
	assert.Contains(t, help, "127.0.0.1:8080", "default address")
}

func TestServeRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--max-body", "lots"},
		{"--log-format", "xml"},
		{"--log-level", "loud"},
		{"--shutdown-timeout", "0s"},
		{"--request-timeout", "0s"},
		{"--read-timeout", "-1s"},
		{"--max-concurrent-requests", "-1"},
		{"--max-queue", "1024", "--max-client-batch-size", "1025"},
		{"--max-queue", "-5"},
		{"--max-queue", "1000"},
		{"--api-key-file", "/nonexistent/keys"},
		{"--threads", "-1"},
		{"--model", "/nonexistent/model.gomps"},
		{"extra"},
	} {
		app := newApp()
		app.Commands = []*cli.Command{newServeCommand()}
		var out bytes.Buffer
		app.Writer, app.ErrWriter = &out, &out
		err := run(app, append([]string{"gomps", "serve", "--addr", "127.0.0.1:0"}, args...))
		require.Error(t, err, "%v", args)
		assert.True(t, strings.HasPrefix(err.Error(), "serve: "), "%v: %v", args, err)
	}
}

// lockedBuffer collects a child's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveBinary builds the gomps binary into the test's temp dir (the Go
// build cache makes the second build a link).
func serveBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "gomps")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run(), "go build")
	return bin
}

// startServe starts the binary's serve command on a free loopback port
// with the tiny model and waits until /health answers 200.
func startServe(t *testing.T, args ...string) (cmd *exec.Cmd, addr string, stderr *lockedBuffer, exited chan error) {
	t.Helper()
	bin := serveBinary(t)
	model := filepath.Join("..", "..", "gomps", "testdata", "tiny")
	cmd = exec.Command(bin, append([]string{"serve", "--model", model, "--threads", "2"}, args...)...)
	cmd.Env = append(os.Environ(), "GOMPS_ADDR=127.0.0.1:0", "GOMPS_LOG_FORMAT=text")
	stderr = &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	require.NoError(t, cmd.Start())
	exited = make(chan error, 1)
	done := make(chan struct{})
	go func() {
		exited <- cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addrRE := regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:\d+)`)
	waitFor(t, "the listening line", 30*time.Second, func() bool {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			return true
		}
		return false
	})
	waitFor(t, "/health 200", 60*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return cmd, addr, stderr, exited
}

// TestServeOverloaded: with --max-queue 1024 (the least the library
// allows) concurrent requests of 1024 texts find the engine's queue full
// and get TEI's 429 body.
func TestServeOverloaded(t *testing.T) {
	_, addr, _, _ := startServe(t, "--max-queue", "1024", "--max-client-batch-size", "1024", "--max-body", "16MiB", "--max-concurrent-requests", "64")
	texts := make([]string, 1024)
	for i := range texts {
		texts[i] = fmt.Sprintf("passage %d on the population of Berlin, Hamburg, Munich and Cologne", i)
	}
	body, err := json.Marshal(map[string]any{"query": "How many people live in Berlin?", "texts": texts})
	require.NoError(t, err)
	var mu sync.Mutex
	codes := map[int]int{}
	var overloaded string
	for attempt := 0; attempt < 5 && (codes[429] == 0 || codes[200] == 0); attempt++ {
		var wg sync.WaitGroup
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Post("http://"+addr+"/rerank", "application/json", bytes.NewReader(body))
				if !assert.NoError(t, err) {
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				if resp.StatusCode == http.StatusTooManyRequests {
					overloaded = string(b)
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	t.Logf("status codes: %v", codes)
	require.Positive(t, codes[429], "the queue filled")
	assert.Positive(t, codes[200])
	assert.Equal(t, codes[200]+codes[429], codes[200]+codes[429]+codes[500]+codes[503]+codes[424], "no other failures")
	assert.JSONEq(t, `{"error":"Model is overloaded","error_type":"overloaded"}`, overloaded)
}

// TestServeEndToEnd builds the real binary, starts it on a free loopback
// port with the tiny model, probes every endpoint, then sends SIGTERM while
// a request is in flight (its body half sent) and checks that the request
// still gets its scores and the process exits 0.
func TestServeEndToEnd(t *testing.T) {
	cmd, addr, stderr, exited := startServe(t)
	base := "http://" + addr

	resp, err := http.Get(base + "/info")
	require.NoError(t, err)
	var info map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&info))
	resp.Body.Close()
	assert.Equal(t, "tiny", info["model_id"])
	assert.Equal(t, "cpu", info["backend"])
	assert.Equal(t, 2.0, info["threads"])
	assert.Equal(t, 1024.0, info["max_queue_pairs"], "the default queue: the least that admits --max-client-batch-size 1000")
	assert.Equal(t, 1000.0, info["max_client_batch_size"])
	assert.Equal(t, 64.0, info["max_concurrent_requests"])
	assert.NotContains(t, info, "model_path")

	resp, err = http.Post(base+"/rerank", "application/json",
		strings.NewReader(`{"query":"How many people live in Berlin?","texts":["Berlin has 3.5 million people.","Paris is in France."]}`))
	require.NoError(t, err)
	var ranks []struct {
		Index int     `json:"index"`
		Score float64 `json:"score"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ranks))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, ranks, 2)
	assert.NotEmpty(t, resp.Header.Get("x-inference-time"))

	resp, err = http.Get(base + "/metrics")
	require.NoError(t, err)
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(m), "gomps_request_success_total 1")

	// A request in flight: headers and half the body sent.
	body := `{"query":"How many people live in Berlin?","texts":["Berlin has 3.5 million people.","Paris is in France.","Rome is old."]}`
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /rerank HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body[:30])
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond) // the server has read the headers

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	waitFor(t, "the shutdown log line", 10*time.Second, func() bool { return strings.Contains(stderr.String(), "shutting down") })
	// Draining: the listener stays open and says so.
	resp, err = http.Get(base + "/health")
	require.NoError(t, err, "the listener stays open while a request is in progress")
	hb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.JSONEq(t, `{"status":"draining"}`, string(hb))
	assert.True(t, resp.Close, "Connection: close while draining")
	select {
	case err := <-exited:
		t.Fatalf("exited with a request in flight: %v\n%s", err, stderr.String())
	case <-time.After(300 * time.Millisecond):
	}

	_, err = io.WriteString(conn, body[30:])
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	inflight, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	got, _ := io.ReadAll(inflight.Body)
	inflight.Body.Close()
	assert.Equal(t, http.StatusOK, inflight.StatusCode, string(got))
	assert.Equal(t, 3, strings.Count(string(got), `"score"`), "the in-flight request got its scores: %s", got)

	select {
	case err := <-exited:
		assert.NoError(t, err, "exit status\n%s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("did not exit after SIGTERM\n%s", stderr.String())
	}
	log := stderr.String()
	assert.Contains(t, log, "msg=stopped")
	assert.NotContains(t, log, "msg=request ", "no per-request log by default")
}

// TestServeDrainCut: a request still in progress when --shutdown-timeout
// passes gets 503 (not a reset), and the process exits 1 saying so.
func TestServeDrainCut(t *testing.T) {
	cmd, addr, stderr, exited := startServe(t, "--shutdown-timeout", "300ms")
	body := `{"query":"q","texts":["a"]}`
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /rerank HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body[:5])
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond) // the server has read the headers
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))

	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "the cut request gets a response")
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(got))
	assert.JSONEq(t, `{"error":"the server is shutting down","error_type":"unhealthy"}`, string(got))
	select {
	case err := <-exited:
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "exit status\n%s", stderr.String())
		assert.Equal(t, 1, ee.ExitCode())
	case <-time.After(30 * time.Second):
		t.Fatalf("did not exit after SIGTERM\n%s", stderr.String())
	}
	assert.Contains(t, stderr.String(), "1 requests were still in progress after --shutdown-timeout 300ms; they got 503")
}

// TestServeAPIKeyFileReload: the keys of --api-key-file are re-read on
// SIGHUP; --api-key keys stay.
func TestServeAPIKeyFileReload(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(keys, []byte("# keys\nfirst-key\n"), 0o600))
	cmd, addr, stderr, _ := startServe(t, "--api-key-file", keys, "--api-key", "flag-key")
	status := func(key string) int {
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/rerank", strings.NewReader(`{"query":"q","texts":["a"]}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, 200, status("first-key"))
	assert.Equal(t, 200, status("flag-key"))
	assert.Equal(t, 401, status("second-key"))
	require.NoError(t, os.WriteFile(keys, []byte("second-key\n"), 0o600))
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	waitFor(t, "the reload", 10*time.Second, func() bool { return strings.Contains(stderr.String(), "API keys reloaded") })
	assert.Equal(t, 401, status("first-key"), "the old file key is gone")
	assert.Equal(t, 200, status("second-key"))
	assert.Equal(t, 200, status("flag-key"))
	resp, err := http.Get("http://" + addr + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
}

// TestServeJSONLogs: with --log-format json every line on stderr is JSON:
// the test-model notice, the request log, a failure.
func TestServeJSONLogs(t *testing.T) {
	bin := serveBinary(t)
	if _, err := os.Stat(gomps.TestModelPath()); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("required under CI=true: the test model: %v", err)
		}
		t.Skipf("the test model is missing: %v", err)
	}
	run := func(args ...string) (lines []string, exit error) {
		cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--log-requests"}, args...)...)
		cmd.Env = append(os.Environ(), "GOMPS_MODEL=", "HF_HUB_CACHE="+t.TempDir(), "HF_HOME=", "GOMPS_LOG_FORMAT=")
		var stderr lockedBuffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		addrRE := regexp.MustCompile(`"msg":"listening","addr":"(127\.0\.0\.1:\d+)"`)
		var addr string
		deadline := time.Now().Add(60 * time.Second)
	wait:
		for time.Now().Before(deadline) {
			select {
			case err := <-done:
				return strings.Split(strings.TrimSpace(stderr.String()), "\n"), err
			case <-time.After(20 * time.Millisecond):
			}
			if m := addrRE.FindStringSubmatch(stderr.String()); m != nil && strings.Contains(stderr.String(), `"msg":"model loaded"`) {
				addr = m[1]
				break wait
			}
		}
		require.NotEmpty(t, addr, stderr.String())
		resp, err := http.Post("http://"+addr+"/rerank", "application/json", strings.NewReader(`{"query":"q","texts":["a"]}`))
		require.NoError(t, err)
		resp.Body.Close()
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		err = <-done
		return strings.Split(strings.TrimSpace(stderr.String()), "\n"), err
	}
	lines, err := run()
	require.NoError(t, err)
	notice := false
	for _, l := range lines {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec), "not JSON: %q", l)
		if m, _ := rec["msg"].(string); strings.Contains(m, "scores come from the TEST model") {
			notice = true
		}
	}
	assert.True(t, notice, "the test-model notice is a JSON line: %q", lines)

	lines, err = run("--model", "/nonexistent/model.gomps")
	require.Error(t, err)
	for _, l := range lines {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec), "not JSON: %q", l)
	}
	assert.Contains(t, lines[len(lines)-1], `"msg":"serve failed"`)
}
