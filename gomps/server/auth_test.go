//go:build cgo

package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// With API keys set every route but /health needs one, checked before
// admission, the body and decoding; keys can be replaced while serving.
func TestAPIKey(t *testing.T) {
	t.Parallel()
	s, hs := newTestServer(t, tiny(t), Config{APIKeys: []string{"key-one", " ", "key-two"}, MaxConcurrentRequests: 1, Dashboard: true})
	body := `{"query":"q","texts":["a"]}`
	for _, c := range []struct {
		method, path, body string
	}{
		{"POST", "/rerank", body}, {"POST", "/v1/rerank", `{"query":"q","documents":["a"]}`},
		{"GET", "/info", ""}, {"GET", "/metrics", ""}, {"GET", "/dashboard", ""}, {"GET", "/dashboard/data", ""},
		{"GET", "/nowhere", ""}, {"POST", "/rerank", `not even JSON`}, {"POST", "/rerank", ""},
	} {
		for _, auth := range []string{"", "Bearer wrong", "Bearer key-one2", "Basic key-one", "key-one"} {
			resp, got := request(t, c.method, hs.URL+c.path, jsonIf(c.body), c.body, "Authorization", auth)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s %s with %q: %s", c.method, c.path, auth, got)
			assert.JSONEq(t, `{"error":"missing or invalid API key: send Authorization: Bearer <key>","error_type":"unauthorized"}`, got)
			assert.Equal(t, `Bearer realm="gomps"`, resp.Header.Get("WWW-Authenticate"))
		}
	}
	resp, _ := request(t, "GET", hs.URL+"/health", "", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "/health needs no key")
	for _, key := range []string{"key-one", "key-two"} {
		resp, got := request(t, "POST", hs.URL+"/rerank", "application/json", body, "Authorization", "Bearer "+key)
		assert.Equal(t, http.StatusOK, resp.StatusCode, got)
		resp, _ = request(t, "GET", hs.URL+"/metrics", "", "", "Authorization", "bearer "+key)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "the scheme is case-insensitive")
	}

	// Auth comes before admission: with the only place taken, a request
	// without a key still gets 401, not 429.
	require.True(t, s.admit(httptestRecorder()))
	resp, _ = request(t, "POST", hs.URL+"/rerank", "application/json", body)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	s.release()

	s.SetAPIKeys([]string{"key-three"})
	resp, _ = request(t, "POST", hs.URL+"/rerank", "application/json", body, "Authorization", "Bearer key-one")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "replaced keys no longer work")
	resp, _ = request(t, "POST", hs.URL+"/rerank", "application/json", body, "Authorization", "Bearer key-three")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	s.SetAPIKeys(nil)
	resp, _ = request(t, "POST", hs.URL+"/rerank", "application/json", body)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "no keys: open")
}

func TestPublicMetrics(t *testing.T) {
	t.Parallel()
	_, hs := newTestServer(t, tiny(t), Config{APIKeys: []string{"k"}, PublicMetrics: true, Dashboard: true})
	for _, p := range []string{"/metrics", "/dashboard", "/dashboard/data"} {
		resp, _ := request(t, "GET", hs.URL+p, "", "")
		assert.Equal(t, http.StatusOK, resp.StatusCode, p)
	}
	resp, _ := request(t, "GET", hs.URL+"/info", "", "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "only metrics and the dashboard are public")
}

func TestCORS(t *testing.T) {
	t.Parallel()
	_, hs := newTestServer(t, tiny(t), Config{CORSAllowOrigins: []string{"https://app.example"}, APIKeys: []string{"k"}})
	resp, got := request(t, "OPTIONS", hs.URL+"/rerank", "", "", "Origin", "https://app.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization, content-type")
	assert.Equal(t, http.StatusNoContent, resp.StatusCode, "a preflight needs no key: %s", got)
	assert.Equal(t, "https://app.example", resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "GET, POST, OPTIONS", resp.Header.Get("Access-Control-Allow-Methods"))
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Content-Type")
	assert.Equal(t, "600", resp.Header.Get("Access-Control-Max-Age"))
	assert.Equal(t, "Origin", resp.Header.Get("Vary"))

	resp, _ = request(t, "OPTIONS", hs.URL+"/rerank", "", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))

	resp, got = request(t, "POST", hs.URL+"/rerank", "application/json", `{"query":"q","texts":["a"]}`, "Origin", "https://app.example", "Authorization", "Bearer k")
	assert.Equal(t, http.StatusOK, resp.StatusCode, got)
	assert.Equal(t, "https://app.example", resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), "x-inference-time")
	resp, _ = request(t, "POST", hs.URL+"/rerank", "application/json", `{"query":"q","texts":["a"]}`, "Origin", "https://app.example")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, "https://app.example", resp.Header.Get("Access-Control-Allow-Origin"), "the browser may read the 401")
	resp, _ = request(t, "POST", hs.URL+"/rerank", "application/json", `{"query":"q","texts":["a"]}`, "Origin", "https://evil.example", "Authorization", "Bearer k")
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "other origins get no CORS headers")

	_, open := newTestServer(t, tiny(t), Config{})
	resp, _ = request(t, "OPTIONS", open.URL+"/rerank", "", "", "Origin", "https://app.example", "Access-Control-Request-Method", "POST")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "CORS off")
	_, any := newTestServer(t, tiny(t), Config{CORSAllowOrigins: []string{"*"}})
	resp, _ = request(t, "OPTIONS", any.URL+"/v1/rerank", "", "", "Origin", "https://x.example", "Access-Control-Request-Method", "POST")
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
}

func httptestRecorder() http.ResponseWriter { return httptest.NewRecorder() }

// jsonIf is the Content-Type of a body: JSON, or none for no body.
func jsonIf(body string) string {
	if body == "" {
		return ""
	}
	return "application/json"
}
