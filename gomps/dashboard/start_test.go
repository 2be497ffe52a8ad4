//go:build cgo

package dashboard_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/gomps/dashboard"
)

// Start serves the page, its data and /metrics for a reranker of its own
// (the gomps bench --dashboard case), fed by the reranker's counters.
func TestStart(t *testing.T) {
	r, err := gomps.Open(context.Background(), "../testdata/tiny", gomps.WithNotices(nil), gomps.WithThreads(2))
	require.NoError(t, err)
	defer r.Close()
	s, err := dashboard.Start("127.0.0.1:0", r, "v0-test")
	require.NoError(t, err)
	defer s.Close()
	require.True(t, strings.HasPrefix(s.URL, "http://127.0.0.1:"), s.URL)
	require.True(t, strings.HasSuffix(s.URL, "/dashboard"), s.URL)
	base := strings.TrimSuffix(s.URL, "/dashboard")

	_, err = r.Score(context.Background(), "q", []string{"a", "b", "c"})
	require.NoError(t, err)

	resp, err := http.Get(s.URL)
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(page), "<title>gomps dashboard</title>")

	resp, err = http.Get(base + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, s.URL, resp.Request.URL.String(), "/ redirects to the page")

	resp, err = http.Get(base + "/metrics")
	require.NoError(t, err)
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(m), "gomps_batch_size_sum 3", "the engine's counters")
	assert.Contains(t, string(m), "process_cpu_seconds_total")

	resp, err = http.Get(s.URL + "/data?window=60")
	require.NoError(t, err)
	var d struct {
		Config struct {
			Model   string `json:"model"`
			Version string `json:"version"`
		} `json:"config"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&d))
	resp.Body.Close()
	assert.Equal(t, r.Info().Model, d.Config.Model)
	assert.Equal(t, "v0-test", d.Config.Version)

	require.NoError(t, s.Close())
	_, err = http.Get(s.URL)
	assert.Error(t, err, "closed")
}
