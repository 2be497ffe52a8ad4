package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fieldPaths lists the JSON field paths of a type by reflection:
// "meta.api_version.version", "results[].index".
func fieldPaths(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		return fieldPaths(t.Elem(), prefix+"[]")
	case t.Kind() != reflect.Struct:
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		out = append(out, p)
		out = append(out, fieldPaths(f.Type, p)...)
	}
	return out
}

// lookup finds a field path in a JSON schema.
func lookup(schema map[string]any, path string) bool {
	for _, part := range strings.Split(path, ".") {
		for strings.HasPrefix(part, "[]") || strings.HasSuffix(part, "[]") {
			if strings.HasPrefix(part, "[]") {
				part = strings.TrimPrefix(part, "[]")
			} else {
				name := strings.TrimSuffix(part, "[]")
				props, _ := schema["properties"].(map[string]any)
				schema, _ = props[name].(map[string]any)
				part = ""
			}
			items, ok := schema["items"].(map[string]any)
			if !ok {
				return false
			}
			schema = items
		}
		if part == "" {
			continue
		}
		props, _ := schema["properties"].(map[string]any)
		next, ok := props[part].(map[string]any)
		if !ok {
			return false
		}
		schema = next
	}
	return true
}

// /openapi.json has every route the server answers and every field of the
// API types, found by walking them.
func TestOpenAPICoversTheAPI(t *testing.T) {
	s := New(Config{Dashboard: true, Version: "v1.2.3", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(s)
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Info    map[string]any                       `json:"info"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	assert.Equal(t, "3.0.3", doc.OpenAPI)
	assert.Equal(t, "v1.2.3", doc.Info["version"])

	n := 0
	for path, methods := range s.methods {
		if path == "/dashboard/" {
			path = "/dashboard/data" // the subtree's one route
		}
		for _, m := range methods {
			assert.Contains(t, doc.Paths[path], strings.ToLower(m), "route %s %s in the document", m, path)
			n++
		}
	}
	assert.GreaterOrEqual(t, n, 9, "routes walked")

	schema := func(path, method, where string) map[string]any {
		op := doc.Paths[path][method]
		var content map[string]any
		if where == "request" {
			rb, _ := op["requestBody"].(map[string]any)
			content, _ = rb["content"].(map[string]any)
		} else {
			rs, _ := op["responses"].(map[string]any)
			ok, _ := rs["200"].(map[string]any)
			content, _ = ok["content"].(map[string]any)
		}
		js, _ := content["application/json"].(map[string]any)
		sc, _ := js["schema"].(map[string]any)
		require.NotNil(t, sc, "%s %s %s schema", method, path, where)
		return sc
	}
	for _, c := range []struct {
		path, where string
		typ         any
	}{
		{"/rerank", "request", TEIRequest{}},
		{"/rerank", "response", []TEIRank{}},
		{"/v1/rerank", "request", CohereRequest{}},
		{"/v1/rerank", "response", CohereResponse{}},
		{"/v2/rerank", "request", CohereRequest{}},
		{"/v2/rerank", "response", CohereResponse{}},
		{"/info", "response", InfoResponse{}},
		{"/health", "response", HealthResponse{}},
	} {
		method := "get"
		if strings.Contains(c.path, "rerank") {
			method = "post"
		}
		sc := schema(c.path, method, c.where)
		paths := fieldPaths(reflect.TypeOf(c.typ), "")
		require.NotEmpty(t, paths, "%T has fields", c.typ)
		for _, p := range paths {
			assert.True(t, lookup(sc, p), "%s %s: field %s of %T", c.path, c.where, p, c.typ)
		}
	}
	assert.True(t, lookup(schema("/rerank", "post", "request"), "texts[]"), "texts are an array")
}
