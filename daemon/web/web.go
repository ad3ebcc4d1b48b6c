// Package web owns jetaid's pages for people: the dashboard (a live view
// of models, memory, throughput, time to first token, temperatures, queues
// and recent events, with load and unload buttons) and the API
// documentation page that renders /openapi.json. They are plain HTML, CSS
// and JavaScript embedded in the binary: nothing is fetched from elsewhere,
// and the build needs no front-end tooling.
//
// The pages read the daemon's own REST endpoints (/status, /models,
// /performance, /openapi.json) and act through them (/load_model,
// /unload_model), sending the API key the user enters. This package
// serves files only; package api routes to it and owns every endpoint.
package web

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
)

//go:embed static
var static embed.FS

// Route is one page or asset route: a net/http ServeMux pattern (the
// method is GET) and its handler.
type Route struct {
	Pattern string
	Handler http.HandlerFunc
}

// Routes are the pages: the dashboard at / and /dashboard, the API
// documentation at /docs, and their scripts and styles under /ui/.
func Routes() []Route {
	return []Route{
		{"/{$}", file("dashboard.html")},
		{"/dashboard", file("dashboard.html")},
		{"/docs", file("docs.html")},
		{"/ui/{file}", asset},
	}
}

func file(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { serve(w, name) }
}

func asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if path.Ext(name) == ".html" {
		name = "" // pages have their own routes
	}
	serve(w, name)
}

func serve(w http.ResponseWriter, name string) {
	b, err := fs.ReadFile(static, "static/"+name)
	if name == "" || err != nil {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":{"message":"no such page or asset","type":"not_found_error","param":null,"code":"not_found"}}` + "\n"))
		return
	}
	h := w.Header()
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	// The files change with the binary; revalidating is cheap on loopback.
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	// Nothing but this origin: the pages load no outside code, fonts or
	// images, and the policy makes sure of it.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	w.Write(b)
}
