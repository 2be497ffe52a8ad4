// Package jsonhttp writes the JSON responses of gomps' HTTP handlers (the
// server's API and the dashboard): bodies and errors in TEI's shape,
// {"error": "...", "error_type": "..."}.
package jsonhttp

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// Error is TEI's ErrorResponse.
type Error struct {
	Error     string `json:"error"`
	ErrorType string `json:"error_type"`
}

// WriteError writes {"error": msg, "error_type": typ} with status code.
func WriteError(w http.ResponseWriter, code int, typ, msg string) {
	Write(w, code, Error{Error: msg, ErrorType: typ})
}

// Write writes v as JSON (HTML characters unescaped) with status code, a
// Content-Type and a Content-Length. A value that cannot be encoded becomes
// a 500 error body.
func Write(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"encoding the response failed","error_type":"backend"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}
