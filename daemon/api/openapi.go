package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"net/http"
	"strconv"
)

// openapiJSONDoc is the OpenAPI 3.1 document of every route New registers.
// It is written by hand, next to the handlers it describes; the package's
// tests check that it lists exactly the registered routes and that real
// answers validate against its schemas. Add a route here when you add one
// to New (see docs/development.md, "Keeping the OpenAPI document true").
//
//go:embed openapi.json
var openapiJSONDoc []byte

// versionPlaceholder is info.version in the file; the served document
// carries the daemon's version instead. The bytes are patched rather than
// decoded and encoded again so that the document keeps its order (the docs
// page shows fields in the order written).
var versionPlaceholder = []byte(`"version": "dev"`)

// openapiDoc returns the document with info.version set to version.
func openapiDoc(version string) []byte {
	v, _ := json.Marshal(version)
	return bytes.Replace(openapiJSONDoc, versionPlaceholder, append([]byte(`"version": `), v...), 1)
}

func (s *Server) openapiJSON(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(s.openapi)))
	h.Set("Cache-Control", "no-cache")
	w.Write(s.openapi)
}
