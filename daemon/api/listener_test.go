package api_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetai/jetai/daemon/api"
)

// rawExchange writes req on a new TCP connection and reads one answer.
func rawExchange(t *testing.T, addr, req string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%q: body: %v", req, err)
	}
	return resp, b
}

// TestMalformedRequestsAnswerJSON: what net/http refuses by itself, before
// any handler runs, is answered in the API's JSON error shape when the
// listener is wrapped by api.Listener, as jetaid's is.
func TestMalformedRequestsAnswerJSON(t *testing.T) {
	s, _ := fakeServerWithFile(t, ``, &fakePool{ready: true})
	s.SetState(api.StateServing)
	hs := httptest.NewUnstartedServer(s.Handler())
	hs.Listener = api.Listener(hs.Listener)
	hs.Config.MaxHeaderBytes = 4 << 10
	hs.Start()
	defer hs.Close()
	addr := hs.Listener.Addr().String()
	cases := []struct {
		name, req string
		status    int
		code      string
	}{
		{"no Host", "GET /status HTTP/1.1\r\n\r\n", 400, "bad_request"},
		{"HTTP/2.0 request line", "GET /status HTTP/2.0\r\nHost: localhost\r\n\r\n", 505, "http_version_not_supported"},
		{"HTTP/9.9 request line", "GET /status HTTP/9.9\r\nHost: localhost\r\n\r\n", 505, "http_version_not_supported"},
		{"conflicting Content-Length", "POST /inference HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, "bad_request"},
		{"bad header byte", "GET /status HTTP/1.1\r\nHost: localhost\r\nX-A: a\x01b\r\n\r\n", 400, "bad_request"},
		{"bad header name", "GET /status HTTP/1.1\r\nHost: localhost\r\nBad Name: x\r\n\r\n", 400, "bad_request"},
		{"two Hosts", "GET /status HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n", 400, "bad_request"},
		{"malformed Host", "GET /status HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "bad_request"},
		{"garbage request line", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400, "bad_request"},
		{"bad method", "G(T /status HTTP/1.1\r\nHost: localhost\r\n\r\n", 400, "bad_request"},
		{"headers too large", "GET /status HTTP/1.1\r\nHost: localhost\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", 431, "headers_too_large"},
		{"unknown transfer encoding", "POST /inference HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "unsupported_transfer_encoding"},
		{"bad chunked body", "POST /inference HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "invalid_request"},
		{"CONNECT", "CONNECT localhost:1 HTTP/1.1\r\nHost: localhost:1\r\n\r\n", 405, "method_not_allowed"},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "http_version_not_supported"},
		{"GET *", "GET * HTTP/1.1\r\nHost: localhost\r\n\r\n", 400, "invalid_request"},
		{"unknown expectation", "POST /inference HTTP/1.1\r\nHost: localhost\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}", 417, "expectation_failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := rawExchange(t, addr, c.req)
			if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %q %q; want %d application/json", resp.StatusCode, resp.Header.Get("Content-Type"), body, c.status)
			}
			if err := checkErrorBody(body); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if !strings.Contains(string(body), `"code":"`+c.code+`"`) || (c.code != "invalid_request" && !strings.Contains(string(body), `"type":"invalid_request_error"`)) {
				t.Fatalf("want code %s: %s", c.code, body)
			}
		})
	}
	// Requests that parse pass through untouched: a JSON answer, a stream.
	resp, body := rawExchange(t, addr, "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
	if resp.StatusCode != 200 || string(body) != "{\"status\":\"ok\"}\n" {
		t.Fatalf("health: %d %q", resp.StatusCode, body)
	}
	req := `{"prompt": "x", "model": "m", "stream": true}`
	resp, body = rawExchange(t, addr, "POST /inference HTTP/1.1\r\nHost: localhost\r\nContent-Length: "+strconv.Itoa(len(req))+"\r\n\r\n"+req)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || !strings.Contains(string(body), `"done":true`) {
		t.Fatalf("stream: %d %q", resp.StatusCode, body)
	}
	// HTTP/1.0 without a Host is served (it has no Host to check).
	resp, _ = rawExchange(t, addr, "GET /status HTTP/1.0\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP/1.0: %d", resp.StatusCode)
	}
}

// A refused request's answer does not wait for its body: a client that
// trickles the body gets its 403 at once, and the connection closes.
func TestRefusalDoesNotWaitForBody(t *testing.T) {
	_, url := fakeServerWithFile(t, ``, &fakePool{ready: true})
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "POST /unload_model HTTP/1.1\r\nHost: localhost\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n{")
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 403 || !strings.Contains(string(b), "forbidden_origin") || !resp.Close {
		t.Fatalf("%d close=%v %s", resp.StatusCode, resp.Close, b)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("the answer waited %v for the body", el)
	}
}
