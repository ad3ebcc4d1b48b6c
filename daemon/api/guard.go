package api

import (
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// guard refuses, before any handler runs, what a hostile web page could
// make a browser send to jetaid, and answers CORS for the origins allowed:
//
//   - a Host header that does not name this machine: a page whose own name
//     was made to resolve to this machine (DNS rebinding) could otherwise
//     read the answers, which are same-origin to it;
//   - an Origin that is neither jetaid's own (its dashboard) nor one of
//     server.cors_origins: a page may send a request without a CORS
//     preflight (a form, or a fetch with a "simple" content type), and the
//     request would act even though the page cannot read the answer;
//   - on POST endpoints, a Content-Type that such a request carries
//     (text/plain, multipart/form-data, ...): the body is JSON, whatever a
//     form claims it is.
//
// /health and /ready answer any Host: load balancers and probes send
// whatever name they were configured with, and they show nothing but a
// state.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := oddTarget(r); e != nil {
			refuse(w, r, e)
			return
		}
		cfg := s.cfg()
		if !probePath(r.URL.Path) && !s.hostAllowed(r, cfg.Server.AllowedHosts) {
			refuse(w, r, &Error{Status: http.StatusForbidden, Code: "forbidden_host", Param: "Host",
				Message: "the Host header " + quote(r.Host) + " does not name this machine; if clients reach jetaid by this name, add it to server.allowed_hosts"})
			return
		}
		if origins := r.Header.Values("Origin"); len(origins) > 0 {
			h := w.Header()
			h.Add("Vary", "Origin")
			origin := origins[0]
			listed := len(origins) == 1 && (slices.Contains(cfg.Server.CORSOrigins, "*") || slices.Contains(cfg.Server.CORSOrigins, origin))
			if !listed && (len(origins) != 1 || !sameOrigin(origin, r)) {
				refuse(w, r, &Error{Status: http.StatusForbidden, Code: "forbidden_origin", Param: "Origin",
					Message: "requests from the web origin " + quote(strings.Join(origins, ", ")) + " are refused: it is not jetaid's own origin nor in server.cors_origins"})
				return
			}
			if listed {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id, X-Jetai-Cache")
			}
			// Preflights need no API key.
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
				if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
					h.Set("Access-Control-Allow-Headers", rh)
				} else {
					h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				}
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if r.Method == http.MethodPost {
			if cts := r.Header.Values("Content-Type"); len(cts) > 0 && (len(cts) > 1 || !jsonBodyType(cts[0])) {
				if _, pattern := s.mux.Handler(r); strings.HasPrefix(pattern, "POST ") {
					refuse(w, r, &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Param: "Content-Type",
						Message: "Content-Type " + quote(strings.Join(cts, ", ")) + " is not accepted: send the JSON body as application/json (or without a Content-Type)"})
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// oddTarget refuses the requests that net/http's ServeMux would answer
// itself in plain text: CONNECT, HTTP/2's connection preface (PRI *), and
// "*" as the target of anything but OPTIONS (net/http answers OPTIONS *
// itself, 200 with no body).
func oddTarget(r *http.Request) *Error {
	switch {
	case r.Method == "PRI" && r.RequestURI == "*":
		return &Error{Status: http.StatusHTTPVersionNotSupported, Type: "invalid_request_error", Code: "http_version_not_supported",
			Message: "HTTP/2 is not served on this port; use HTTP/1.1"}
	case r.Method == http.MethodConnect:
		return &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "CONNECT is not served: jetaid is not a proxy"}
	case r.RequestURI == "*":
		return badRequest("", "the request target * goes only with OPTIONS")
	}
	return nil
}

// refuse answers e and, when the request has a body, closes the
// connection: net/http would otherwise read the unread body (up to
// 256 KiB, at the client's pace) before it sends the answer, so that the
// connection can serve another request.
func refuse(w http.ResponseWriter, r *http.Request, e *Error) {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
	writeError(w, e)
}

// jsonBodyType reports whether a POST may carry Content-Type ct:
// application/json with any parameters, or application/x-www-form-urlencoded,
// which is what `curl -d` sends (the body is read as JSON all the same, and
// a browser form cannot url-encode a JSON object: "{" becomes "%7B"; a
// script that sends raw text under that type carries an Origin header,
// which the Origin check has refused already).
func jsonBodyType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || mt == "application/x-www-form-urlencoded")
}

// sameOrigin reports whether origin is jetaid's own as the request reached
// it: the scheme it was served on and the same host and port as its Host
// header (which hostAllowed has checked).
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil {
		return false // "null" (a sandboxed or file: page) among them
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(u.Scheme, scheme) && hostPort(u.Host, scheme) == hostPort(r.Host, scheme)
}

// hostPort is host:port in lower case, with the scheme's default port
// when there is none.
func hostPort(hp, scheme string) string {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		host, port = strings.Trim(hp, "[]"), ""
	}
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return net.JoinHostPort(strings.ToLower(strings.TrimSuffix(host, ".")), port)
}

// hostAllowed reports whether the request's Host names this machine: no
// Host at all (HTTP/1.0; browsers always send one), a loopback name or
// address, the address the connection arrived on, an address of one of
// the machine's interfaces, its host name (also under .local, mDNS), or an
// entry of server.allowed_hosts. An IP address cannot be rebound, so only
// names need listing.
func (s *Server) hostAllowed(r *http.Request, allowed []string) bool {
	host := r.Host
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap().WithZone("")
		if ip.IsLoopback() {
			return true
		}
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if ap, err := netip.ParseAddrPort(la.String()); err == nil && ap.Addr().Unmap().WithZone("") == ip {
				return true
			}
		}
		if machine.hasAddr(ip) {
			return true
		}
	} else if machine.isName(host) {
		return true
	}
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSuffix(strings.Trim(a, "[]"), "."))
		switch {
		case a == "*", a == host:
			return true
		case strings.HasPrefix(a, "*.") && strings.HasSuffix(host, a[1:]):
			return true
		}
		if ip, err := netip.ParseAddr(a); err == nil {
			if hip, err := netip.ParseAddr(host); err == nil && hip.Unmap().WithZone("") == ip.Unmap() {
				return true
			}
		}
	}
	return false
}

// machine caches this machine's addresses and host name for the Host
// check; they change rarely (DHCP, a new interface), so a few seconds old
// is fine and spares each request the system calls.
var machine = &machineInfo{}

type machineInfo struct {
	mu    sync.Mutex
	at    time.Time
	addrs map[netip.Addr]bool
	names []string
}

const machineInfoTTL = 5 * time.Second

func (m *machineInfo) refresh() {
	if time.Since(m.at) < machineInfoTTL && m.addrs != nil {
		return
	}
	addrs, _ := net.InterfaceAddrs()
	hostname, _ := os.Hostname()
	m.addrs = map[netip.Addr]bool{}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			m.addrs[p.Addr().Unmap().WithZone("")] = true
		}
	}
	m.names = nil
	if hostname = strings.ToLower(strings.TrimSuffix(hostname, ".")); hostname != "" && hostname != "localhost" {
		m.names = []string{hostname, hostname + ".local"}
	}
	m.at = time.Now()
}

func (m *machineInfo) hasAddr(ip netip.Addr) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refresh()
	return m.addrs[ip]
}

func (m *machineInfo) isName(host string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refresh()
	return slices.Contains(m.names, host)
}
