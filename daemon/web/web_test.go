package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestOffline: the pages work without the internet, so no embedded file may
// name an outside address (the SVG namespace is a name, not a fetch).
func TestOffline(t *testing.T) {
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	n := 0
	err := fs.WalkDir(static, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := fs.ReadFile(static, path)
		if err != nil {
			return err
		}
		for _, m := range url.FindAllString(string(b), -1) {
			if m != "http://www.w3.org" {
				t.Errorf("%s names an outside address: %s", path, m)
			}
		}
		return nil
	})
	if err != nil || n < 6 {
		t.Fatalf("walked %d files: %v", n, err)
	}
}

func TestRoutesServeTheFiles(t *testing.T) {
	mux := http.NewServeMux()
	for _, r := range Routes() {
		mux.HandleFunc("GET "+r.Pattern, r.Handler)
	}
	for _, c := range []struct {
		path, ctype, contains string
		status                int
	}{
		{"/", "text/html", `src="/ui/dashboard.js"`, 200},
		{"/dashboard", "text/html", `src="/ui/dashboard.js"`, 200},
		{"/docs", "text/html", `src="/ui/docs.js"`, 200},
		{"/ui/app.css", "text/css", "prefers-color-scheme", 200},
		{"/ui/common.js", "text/javascript", "Authorization", 200},
		{"/ui/icon.svg", "image/svg+xml", "<svg", 200},
		{"/ui/docs.html", "application/json", "not_found", 404}, // pages have their own routes
		{"/ui/nope.js", "application/json", "not_found", 404},
		{"/nope", "", "", 404},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
		if rec.Code != c.status || !strings.HasPrefix(rec.Header().Get("Content-Type"), c.ctype) || !strings.Contains(rec.Body.String(), c.contains) {
			t.Errorf("GET %s: %d %q, want %d %s with %q", c.path, rec.Code, rec.Header().Get("Content-Type"), c.status, c.ctype, c.contains)
		}
		if c.status == 200 && !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: no content security policy", c.path)
		}
	}
}
