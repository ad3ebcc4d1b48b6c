package api_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/api"
	"github.com/jetai/jetai/internal/testmodel"
)

// send is one request with headers that the client otherwise sets itself
// (Host) or that may repeat (several values of one name).
func send(t *testing.T, method, url, body string, hdr [][2]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hdr {
		if h[0] == "Host" {
			req.Host = h[1]
			continue
		}
		req.Header.Add(h[0], h[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if resp.Header.Get("Content-Type") == "application/json" {
		a.JSON = map[string]any{}
		if err := json.Unmarshal(b, &a.JSON); err != nil {
			t.Fatalf("%s %s: bad JSON %q: %v", method, url, b, err)
		}
	}
	return a
}

// machineAddr is an address of one of this machine's interfaces other
// than loopback, if it has one.
func machineAddr() (netip.Addr, bool) {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() && !p.Addr().IsLinkLocalUnicast() {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// TestHostileRequests: what a web page can make a browser send is refused
// before any handler runs (403 or 415 with a JSON error), and what the
// daemon's own pages, curl and configured origins send is served.
func TestHostileRequests(t *testing.T) {
	fp := &fakePool{ready: true}
	s, url := fakeServerWithFile(t, `
server {
  cors_origins  = ["http://app.example"]
  allowed_hosts = ["jetson.lan", "*.home.arpa", "10.9.8.7"]
}`, fp)
	s.SetState(api.StateServing)
	own := "http://" + strings.TrimPrefix(url, "http://")
	port := url[strings.LastIndex(url, ":")+1:]
	type hdr = [][2]string
	const model = `{"model_name": "m"}`
	const prompt = `{"prompt": "x", "model": "m"}`
	cases := []struct {
		name, method, path, body string
		hdr                      hdr
		status                   int
		code                     string
	}{
		// The exploit: a page's text/plain POST needs no preflight.
		{"foreign origin unload", "POST", "/unload_model", model, hdr{{"Origin", "http://evil.example"}, {"Content-Type", "text/plain"}}, 403, "forbidden_origin"},
		{"foreign origin json", "POST", "/unload_model", model, hdr{{"Origin", "http://evil.example"}, {"Content-Type", "application/json"}}, 403, "forbidden_origin"},
		{"foreign origin load", "POST", "/load_model", model, hdr{{"Origin", "http://evil.example"}}, 403, "forbidden_origin"},
		{"foreign origin inference", "POST", "/inference", prompt, hdr{{"Origin", "http://evil.example"}}, 403, "forbidden_origin"},
		{"foreign origin chat", "POST", "/v1/chat/completions", `{"model": "m", "messages": [{"role": "user", "content": "x"}]}`, hdr{{"Origin", "https://evil.example"}}, 403, "forbidden_origin"},
		{"foreign origin optimize", "POST", "/optimize", ``, hdr{{"Origin", "http://evil.example"}}, 403, "forbidden_origin"},
		{"foreign origin status", "GET", "/status", ``, hdr{{"Origin", "http://evil.example"}}, 403, "forbidden_origin"},
		{"foreign origin models", "GET", "/v1/models", ``, hdr{{"Origin", "http://evil.example"}}, 403, "forbidden_origin"},
		{"foreign origin dashboard", "GET", "/dashboard", ``, hdr{{"Origin", "http://evil.example"}}, 403, "forbidden_origin"},
		{"foreign origin docs", "GET", "/openapi.json", ``, hdr{{"Origin", "http://evil.example"}}, 403, "forbidden_origin"},
		{"null origin", "POST", "/unload_model", model, hdr{{"Origin", "null"}}, 403, "forbidden_origin"},
		{"own host other port", "POST", "/unload_model", model, hdr{{"Origin", "http://127.0.0.1:1"}}, 403, "forbidden_origin"},
		{"own host other scheme", "POST", "/unload_model", model, hdr{{"Origin", "https://127.0.0.1:" + port}}, 403, "forbidden_origin"},
		{"own origin with a path", "POST", "/unload_model", model, hdr{{"Origin", own + "/x"}}, 403, "forbidden_origin"},
		{"two origins", "POST", "/unload_model", model, hdr{{"Origin", own}, {"Origin", "http://evil.example"}}, 403, "forbidden_origin"},
		{"listed origin", "POST", "/unload_model", model, hdr{{"Origin", "http://app.example"}}, 200, ""},
		{"own origin", "POST", "/unload_model", model, hdr{{"Origin", own}, {"Content-Type", "application/json"}}, 200, ""},
		{"own origin by name", "POST", "/unload_model", model, hdr{{"Host", "localhost:" + port}, {"Origin", "http://LOCALHOST:" + port}}, 200, ""},
		{"own origin default port", "GET", "/status", ``, hdr{{"Host", "jetson.lan"}, {"Origin", "http://jetson.lan:80"}}, 200, ""},

		// DNS rebinding: a foreign name in Host.
		{"foreign host status", "GET", "/status", ``, hdr{{"Host", "evil.example:8000"}}, 403, "forbidden_host"},
		{"foreign host models", "GET", "/models", ``, hdr{{"Host", "evil.example"}}, 403, "forbidden_host"},
		{"foreign host inference", "POST", "/inference", prompt, hdr{{"Host", "evil.example:8000"}}, 403, "forbidden_host"},
		{"foreign host dashboard", "GET", "/", ``, hdr{{"Host", "evil.example:8000"}}, 403, "forbidden_host"},
		{"foreign host, own-looking origin", "GET", "/status", ``, hdr{{"Host", "evil.example:8000"}, {"Origin", "http://evil.example:8000"}}, 403, "forbidden_host"},
		{"suffix is not a subdomain", "GET", "/status", ``, hdr{{"Host", "home.arpa"}}, 403, "forbidden_host"},
		{"lookalike", "GET", "/status", ``, hdr{{"Host", "jetson.lan.evil.example"}}, 403, "forbidden_host"},
		{"localhost suffix trick", "GET", "/status", ``, hdr{{"Host", "localhost.evil.example"}}, 403, "forbidden_host"},
		{"foreign address", "GET", "/status", ``, hdr{{"Host", "192.0.2.1:8000"}}, 403, "forbidden_host"},
		{"health answers any host", "GET", "/health", ``, hdr{{"Host", "evil.example:8000"}}, 200, ""},
		{"allowed host", "GET", "/status", ``, hdr{{"Host", "jetson.lan:8000"}}, 200, ""},
		{"allowed host case and dot", "GET", "/status", ``, hdr{{"Host", "JETSON.LAN.:8000"}}, 200, ""},
		{"allowed subdomain", "GET", "/status", ``, hdr{{"Host", "box.home.arpa"}}, 200, ""},
		{"allowed address", "GET", "/status", ``, hdr{{"Host", "10.9.8.7:8000"}}, 200, ""},
		{"localhost", "GET", "/status", ``, hdr{{"Host", "localhost:8000"}}, 200, ""},
		{"localhost subdomain", "GET", "/status", ``, hdr{{"Host", "app.localhost"}}, 200, ""},
		{"loopback range", "GET", "/status", ``, hdr{{"Host", "127.1.2.3:8000"}}, 200, ""},
		{"loopback v6", "GET", "/status", ``, hdr{{"Host", "[::1]:8000"}}, 200, ""},

		// Content types a form sends without a preflight.
		{"text/plain from no origin", "POST", "/unload_model", model, hdr{{"Content-Type", "text/plain"}}, 415, "unsupported_media_type"},
		{"text/plain inference", "POST", "/inference", prompt, hdr{{"Content-Type", "text/plain;charset=UTF-8"}}, 415, "unsupported_media_type"},
		{"multipart", "POST", "/v1/completions", prompt, hdr{{"Content-Type", "multipart/form-data; boundary=x"}}, 415, "unsupported_media_type"},
		{"unparsable type", "POST", "/inference", prompt, hdr{{"Content-Type", "application/json; charset"}}, 415, "unsupported_media_type"},
		{"two types", "POST", "/inference", prompt, hdr{{"Content-Type", "application/json"}, {"Content-Type", "text/plain"}}, 415, "unsupported_media_type"},
		{"text/plain from own origin", "POST", "/unload_model", model, hdr{{"Origin", own}, {"Content-Type", "text/plain"}}, 415, "unsupported_media_type"},
		{"json", "POST", "/inference", prompt, hdr{{"Content-Type", "application/json"}}, 200, ""},
		{"json with charset", "POST", "/inference", prompt, hdr{{"Content-Type", "Application/JSON; charset=utf-8"}}, 200, ""},
		{"no content type", "POST", "/inference", prompt, nil, 200, ""},
		{"curl -d", "POST", "/inference", prompt, hdr{{"Content-Type", "application/x-www-form-urlencoded"}}, 200, ""},
		{"text/plain GET", "GET", "/status", ``, hdr{{"Content-Type", "text/plain"}}, 200, ""},
		{"text/plain to no endpoint", "POST", "/nope", `{}`, hdr{{"Content-Type", "text/plain"}}, 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := send(t, c.method, url+c.path, c.body, c.hdr)
			if c.status >= 400 {
				wantError(t, a, c.status, c.code)
				return
			}
			if a.Status != c.status {
				t.Fatalf("status %d, want %d: %s", a.Status, c.status, a.Body)
			}
		})
	}

	// An address of the machine's own (the API may listen on 0.0.0.0).
	if ip, ok := machineAddr(); ok {
		if a := send(t, "GET", url+"/status", "", hdr{{"Host", netip.AddrPortFrom(ip, 8000).String()}}); a.Status != 200 {
			t.Errorf("Host %s (this machine's): %d %s", ip, a.Status, a.Body)
		}
	}

	// Preflights: an allowed origin's works, a foreign one's is refused.
	a := send(t, "OPTIONS", url+"/inference", "", hdr{{"Origin", "http://app.example"}, {"Access-Control-Request-Method", "POST"}})
	if a.Status != 204 || a.Header.Get("Access-Control-Allow-Origin") != "http://app.example" {
		t.Fatalf("preflight: %d %v", a.Status, a.Header)
	}
	a = send(t, "OPTIONS", url+"/inference", "", hdr{{"Origin", "http://evil.example"}, {"Access-Control-Request-Method", "POST"}})
	wantError(t, a, 403, "forbidden_origin")
	// jetaid's own origin gets no CORS headers (it needs none).
	a = send(t, "POST", url+"/inference", prompt, hdr{{"Origin", own}})
	if a.Status != 200 || a.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("own origin: %d %v", a.Status, a.Header)
	}
}

// A config reload changes the hosts allowed at once.
func TestAllowedHostsLive(t *testing.T) {
	s, url := fakeServerWithFile(t, ``, &fakePool{ready: true})
	hdr := [][2]string{{"Host", "jetson.lan:8000"}}
	wantError(t, send(t, "GET", url+"/models", "", hdr), 403, "forbidden_host")
	cfg := parseConfig(t, `
server {
  allowed_hosts = ["jetson.lan"]
}`)
	s.SetConfig(cfg)
	if a := send(t, "GET", url+"/models", "", hdr); a.Status != 200 {
		t.Fatalf("after reload: %d %s", a.Status, a.Body)
	}
}

// parseConfig is hcl plus the model "m" of fakeServerWithFile.
func parseConfig(t *testing.T, hcl string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(hcl+`
model "m" {
  path    = "`+testmodel.Path(t)+`"
  aliases = ["alias"]
}`), filepath.Join(t.TempDir(), "jetai.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
