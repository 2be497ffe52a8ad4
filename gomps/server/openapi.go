package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/gomps/gomps/gomps/internal/jsonhttp"
)

// HealthResponse is the body of GET /health.
type HealthResponse struct {
	Status string `json:"status" doc:"ok; loading or draining (with 503)"`
}

// apiRoute describes one route in /openapi.json.
type apiRoute struct {
	method, path, summary string
	request               any    // a value of the JSON body's type; nil: no body
	response              any    // a value of the JSON answer's type; nil: contentType
	contentType           string // of a non-JSON answer
	errors                []int  // error statuses, with TEI's error body
}

// scoringErrors are the statuses a scoring route answers besides 200.
var scoringErrors = []int{400, 401, 408, 413, 415, 422, 424, 429, 503, 504}

// apiRoutes lists every route the server answers (New routes them).
func (s *Server) apiRoutes() []apiRoute {
	routes := []apiRoute{
		{"POST", "/rerank", "text-embeddings-inference rerank", TEIRequest{}, []TEIRank{}, "", scoringErrors},
		{"POST", "/v1/rerank", "Cohere v1 / Jina rerank", CohereRequest{}, CohereResponse{}, "", scoringErrors},
		{"POST", "/v2/rerank", "Cohere v2 rerank", CohereRequest{}, CohereResponse{}, "", scoringErrors},
		{"GET", "/health", "200 when the model is loaded", nil, HealthResponse{}, "", []int{503}},
		{"GET", "/info", "the model and the limits in force", nil, InfoResponse{}, "", []int{401, 503}},
		{"GET", "/metrics", "Prometheus metrics", nil, nil, "text/plain", []int{401}},
		{"GET", "/openapi.json", "this document", nil, nil, "application/json", []int{401}},
	}
	if s.cfg.Dashboard {
		routes = append(routes,
			apiRoute{"GET", "/dashboard", "the live dashboard page", nil, nil, "text/html", []int{401, 503}},
			apiRoute{"GET", "/dashboard/data", "the dashboard's data (?window=SECONDS)", nil, nil, "application/json", []int{400, 401, 503}})
	}
	return routes
}

// openAPI builds the OpenAPI 3 document of the routes.
func (s *Server) openAPI() map[string]any {
	paths := map[string]any{}
	errSchema := schemaOf(reflect.TypeOf(jsonhttp.Error{}))
	for _, rt := range s.apiRoutes() {
		op := map[string]any{"summary": rt.summary}
		ok := map[string]any{"description": "OK"}
		switch {
		case rt.response != nil:
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(rt.response))}}
		default:
			ok["content"] = map[string]any{rt.contentType: map[string]any{}}
		}
		responses := map[string]any{"200": ok}
		for _, code := range rt.errors {
			responses[strconv.Itoa(code)] = map[string]any{"description": http.StatusText(code),
				"content": map[string]any{"application/json": map[string]any{"schema": errSchema}}}
		}
		op["responses"] = responses
		if rt.request != nil {
			op["requestBody"] = map[string]any{"required": true,
				"content": map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(rt.request))}}}
		}
		if rt.path != "/health" {
			op["security"] = []any{map[string]any{"bearer": []any{}}, map[string]any{}}
		}
		item, _ := paths[rt.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.path] = item
		}
		item[strings.ToLower(rt.method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info":    map[string]any{"title": "gomps", "version": s.cfg.Version, "description": "Rerank (query, passage) pairs with a MiniLM cross-encoder: TEI and Cohere/Jina APIs."},
		"paths":   paths,
		"components": map[string]any{"securitySchemes": map[string]any{
			"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "an API key (--api-key), when the server has any"}}},
	}
}

// schemaOf returns the JSON schema of a Go type by its json tags; a field's
// doc tag is its description, a schema tag overrides the schema of a
// json.RawMessage ("[]string", "[]string|object", "object").
func schemaOf(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		return structSchema(t)
	case reflect.Slice, reflect.Array:
		if t == reflect.TypeOf(json.RawMessage{}) {
			return map[string]any{}
		}
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	}
	return map[string]any{}
}

// structSchema is schemaOf of a struct: an object of its JSON fields.
func structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		var sc map[string]any
		switch f.Tag.Get("schema") {
		case "[]string":
			sc = map[string]any{"type": "array", "items": map[string]any{"type": "string"}}
		case "[]string|object":
			sc = map[string]any{"type": "array", "items": map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "object"}}}}
		case "object":
			sc = map[string]any{"type": "object"}
		default:
			sc = schemaOf(f.Type)
		}
		if d := f.Tag.Get("doc"); d != "" {
			sc["description"] = d
		}
		props[name] = sc
	}
	return map[string]any{"type": "object", "properties": props}
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.openAPI())
}
