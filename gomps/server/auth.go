package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
)

// keySet is the API keys in force, as sha256 digests (compared in constant
// time, whatever their length).
type keySet struct{ sums [][sha256.Size]byte }

func newKeySet(keys []string) *keySet {
	ks := &keySet{}
	for _, k := range keys {
		if k = strings.TrimSpace(k); k != "" {
			ks.sums = append(ks.sums, sha256.Sum256([]byte(k)))
		}
	}
	return ks
}

// allows reports whether given is one of the keys, comparing with every key
// in constant time.
func (ks *keySet) allows(given string) bool {
	sum := sha256.Sum256([]byte(given))
	ok := 0
	for i := range ks.sums {
		ok |= subtle.ConstantTimeCompare(sum[:], ks.sums[i][:])
	}
	return ok == 1
}

// SetAPIKeys replaces the API keys (empty strings are ignored): with at
// least one, every route but /health (and /metrics and /dashboard with
// Config.PublicMetrics) requires "Authorization: Bearer <key>"; with none,
// no route does. Safe to call while serving (on SIGHUP, say).
func (s *Server) SetAPIKeys(keys []string) {
	s.keys.Store(newKeySet(keys))
}

// authorized checks the request's API key, or writes 401 and returns false.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, name string) bool {
	ks := s.keys.Load()
	if ks == nil || len(ks.sums) == 0 || name == "/health" || (s.cfg.PublicMetrics && (name == "/metrics" || name == "/dashboard")) {
		return true
	}
	scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if strings.EqualFold(scheme, "Bearer") && ks.allows(strings.TrimSpace(key)) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="gomps"`)
	writeError(w, http.StatusUnauthorized, errUnauthorized, "missing or invalid API key: send Authorization: Bearer <key>")
	return false
}

// CORS answers.
const (
	corsMethods = "GET, POST, OPTIONS"
	corsHeaders = "Authorization, Content-Type, X-Request-Id"
	corsMaxAge  = "600"
)

// corsOrigin returns the Access-Control-Allow-Origin value for a request's
// Origin, or "" when the origin is not allowed (or CORS is off).
func (s *Server) corsOrigin(origin string) string {
	if origin == "" || len(s.cfg.CORSAllowOrigins) == 0 {
		return ""
	}
	if slices.Contains(s.cfg.CORSAllowOrigins, "*") {
		return "*"
	}
	if slices.Contains(s.cfg.CORSAllowOrigins, origin) {
		return origin
	}
	return ""
}

// cors adds the CORS headers of an allowed origin to a response. It answers
// a preflight (OPTIONS with Access-Control-Request-Method) itself, before
// authentication (browsers send no credentials with one), and reports
// whether it did.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) (answered bool) {
	origin := r.Header.Get("Origin")
	allow := s.corsOrigin(origin)
	if origin != "" {
		w.Header().Add("Vary", "Origin")
	}
	if allow != "" {
		w.Header().Set("Access-Control-Allow-Origin", allow)
		w.Header().Set("Access-Control-Expose-Headers", "X-Request-Id, x-compute-type, x-compute-time, x-compute-characters, x-compute-tokens, x-total-time, x-tokenization-time, x-queue-time, x-inference-time")
	}
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	if allow == "" {
		writeError(w, http.StatusForbidden, errValidation, "origin "+origin+" is not allowed (--cors-allow-origin)")
		return true
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", corsMethods)
	h.Set("Access-Control-Allow-Headers", corsHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
	return true
}
