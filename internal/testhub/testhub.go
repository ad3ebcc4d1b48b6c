// Package testhub is a local model hub for tests, so that no test reaches
// the internet: one HTTP server speaks the Hugging Face Hub's API (model
// info, the tree listing with LFS sizes and sha256, resolve URLs, model
// search) and the Ollama registry's (manifests, blobs); resolve and blob
// URLs redirect to a second "CDN" server that serves the bytes and honours
// Range, as the real ones do. Faults can be injected per file: a
// connection cut at an offset, wrong bytes, a stall; the bytes served are
// counted. It serves files from disk (models made by internal/testmodel).
package testhub

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// Content types of the Ollama registry (see Ollama's server/images.go).
const (
	ManifestV2      = "application/vnd.docker.distribution.manifest.v2+json"
	LayerModel      = "application/vnd.ollama.image.model"
	LayerProjector  = "application/vnd.ollama.image.projector"
	LayerTemplate   = "application/vnd.ollama.image.template"
	LayerParams     = "application/vnd.ollama.image.params"
	ConfigMediaType = "application/vnd.docker.container.image.v1+json"
)

// Fault changes how the CDN serves one blob.
type Fault struct {
	// CutAt closes the connection once the response reaches this file
	// offset (0: no cut). Times bounds how many responses are cut (0: 1).
	CutAt int64
	Times int
	// Corrupt serves wrong bytes (the declared sha256 stays the true one).
	Corrupt bool
	// StallAt holds the response at this offset until Release or until
	// the client goes away (0: no stall).
	StallAt int64
}

type blob struct {
	id     int
	name   string // OWNER/REPO/PATH or NAME:TAG/LAYER, for faults and counts
	path   string // on disk
	size   int64
	sha    string
	fault  *Fault
	cuts   int
	served int64
	gets   int
	ranged int
}

type repo struct {
	id    string
	gated bool
	files map[string]*blob // by repo path
	other map[string][]byte
}

type ollamaModel struct {
	manifest []byte
	blobs    map[string]*blob // by digest "sha256:…"
	config   []byte
}

// TB is what the hub needs of its user: testing.TB, or a benchmark's own.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// Hub is a running local hub. URL is the base of both the Hub API and the
// registry (as hf_endpoint and ollama_registry); CDN is the file server.
type Hub struct {
	URL, CDN string
	// Token is the bearer token gated repos want.
	Token string

	hub, cdn *httptest.Server
	mu       sync.Mutex
	repos    map[string]*repo
	ollama   map[string]*ollamaModel // by "ns/name:tag"
	blobs    map[int]*blob           // by id (the CDN's path)
	release  chan struct{}
	stalled  chan struct{}
	nextID   int
}

// New starts a hub and its CDN; both stop at the test's end.
func New(t TB) *Hub {
	h := &Hub{Token: "hf_testtoken", repos: map[string]*repo{}, ollama: map[string]*ollamaModel{}, blobs: map[int]*blob{},
		release: make(chan struct{}), stalled: make(chan struct{}, 16)}
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	h.hub = httptest.NewServer(http.HandlerFunc(h.serveHub))
	h.URL, h.CDN = h.hub.URL, h.cdn.URL
	t.Cleanup(func() {
		h.Release()
		h.hub.CloseClientConnections()
		h.cdn.CloseClientConnections()
		h.hub.Close()
		h.cdn.Close()
	})
	return h
}

func (h *Hub) addBlob(name, file string) (*blob, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hs := sha256.New()
	n, err := io.Copy(hs, f)
	if err != nil {
		return nil, err
	}
	h.nextID++
	b := &blob{id: h.nextID, name: name, path: file, size: n, sha: hex.EncodeToString(hs.Sum(nil))}
	h.blobs[b.id] = b
	return b, nil
}

// AddRepo publishes a Hugging Face repo "OWNER/NAME" whose files (repo
// path → file on disk) are LFS files; a gated repo wants Token.
func (h *Hub) AddRepo(t TB, id string, files map[string]string, gated bool) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if old := h.repos[id]; old != nil { // a new revision: the old files go
		for _, b := range old.files {
			delete(h.blobs, b.id)
		}
	}
	r := &repo{id: id, gated: gated, files: map[string]*blob{}, other: map[string][]byte{
		"README.md": []byte("# " + id + "\n"), ".gitattributes": []byte("*.gguf filter=lfs diff=lfs merge=lfs -text\n")}}
	for p, file := range files {
		b, err := h.addBlob(id+"/"+p, file)
		if err != nil {
			t.Fatal(err)
		}
		r.files[p] = b
	}
	h.repos[id] = r
}

// AddOllama publishes NAME:TAG ("llama3.2:1b"; a NAME without a slash is
// under library/) whose model layer is the file model, with a projector
// layer when projector is not "".
func (h *Hub) AddOllama(t TB, nameTag, model, projector string) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	name, tag, ok := strings.Cut(nameTag, ":")
	if !ok {
		tag = "latest"
	}
	if !strings.Contains(name, "/") {
		name = "library/" + name
	}
	om := &ollamaModel{blobs: map[string]*blob{}}
	type layer struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	}
	var layers []layer
	add := func(mt, file string) {
		b, err := h.addBlob(nameTag+"/"+mt[strings.LastIndex(mt, ".")+1:], file)
		if err != nil {
			t.Fatal(err)
		}
		om.blobs["sha256:"+b.sha] = b
		layers = append(layers, layer{mt, "sha256:" + b.sha, b.size})
	}
	add(LayerModel, model)
	if projector != "" {
		add(LayerProjector, projector)
	}
	tmpl := []byte("{{ .Prompt }}")
	ts := sha256.Sum256(tmpl)
	layers = append(layers, layer{LayerTemplate, "sha256:" + hex.EncodeToString(ts[:]), int64(len(tmpl))})
	om.config = []byte(`{"model_format":"gguf","model_family":"llama"}`)
	cs := sha256.Sum256(om.config)
	m := map[string]any{"schemaVersion": 2, "mediaType": ManifestV2,
		"config": layer{ConfigMediaType, "sha256:" + hex.EncodeToString(cs[:]), int64(len(om.config))}, "layers": layers}
	om.manifest, _ = json.Marshal(m)
	h.ollama[name+":"+tag] = om
}

// SetFault sets (nil: clears) the fault of every blob whose name
// contains name.
func (h *Hub) SetFault(name string, f *Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range h.blobs {
		if strings.Contains(b.name, name) {
			b.fault, b.cuts = f, 0
		}
	}
}

// Stats of the blobs whose name contains name, summed.
type Stats struct {
	Served int64 // bytes sent
	Gets   int   // GET requests
	Ranged int   // GET requests with a Range
	Size   int64 // the blobs' sizes
}

// Stats counts what the CDN served of the blobs whose name contains name.
func (h *Hub) Stats(name string) Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	var s Stats
	for _, b := range h.blobs {
		if strings.Contains(b.name, name) {
			s.Served += b.served
			s.Gets += b.gets
			s.Ranged += b.ranged
			s.Size += b.size
		}
	}
	return s
}

// SHA256 returns the hex sha256 of the blob named name: a repo file's
// "OWNER/REPO/PATH" or its PATH alone, or an Ollama "NAME:TAG/model".
func (h *Hub) SHA256(name string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range h.blobs {
		if b.name == name || strings.HasSuffix(b.name, "/"+name) {
			return b.sha
		}
	}
	return ""
}

// Stalled is signalled each time a response reaches its StallAt.
func (h *Hub) Stalled() <-chan struct{} { return h.stalled }

// Release lets every stalled response go on (once per hub).
func (h *Hub) Release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

// --- the Hub API and the registry ---

func hubError(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (h *Hub) authorized(r *http.Request) bool {
	return r.Header.Get("Authorization") == "Bearer "+h.Token
}

func (h *Hub) serveHub(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/v2/"):
		h.serveRegistry(w, r)
	case p == "/api/models":
		h.search(w, r)
	case strings.HasPrefix(p, "/api/models/"):
		h.modelAPI(w, r, strings.TrimPrefix(p, "/api/models/"))
	default:
		h.resolve(w, r)
	}
}

// lookup finds the repo named by the first two path elements of rest;
// an unknown repo answers as the Hub does to an anonymous client (401,
// X-Error-Code RepoNotFound), a gated one without the token 401 GatedRepo.
func (h *Hub) lookup(w http.ResponseWriter, r *http.Request, rest string, wantFiles bool) (*repo, string, bool) {
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) < 2 {
		hubError(w, http.StatusNotFound, "", "not found")
		return nil, "", false
	}
	id := parts[0] + "/" + parts[1]
	tail := ""
	if len(parts) == 3 {
		tail = parts[2]
	}
	h.mu.Lock()
	rp := h.repos[id]
	h.mu.Unlock()
	if rp == nil {
		hubError(w, http.StatusUnauthorized, "RepoNotFound", "Repository Not Found for url: "+r.URL.String()+".")
		return nil, "", false
	}
	if rp.gated && wantFiles && !h.authorized(r) {
		hubError(w, http.StatusUnauthorized, "GatedRepo", "Access to model "+id+" is restricted. You must have access to it and be authenticated to access it. Please log in.")
		return nil, "", false
	}
	return rp, tail, true
}

func (h *Hub) modelAPI(w http.ResponseWriter, r *http.Request, rest string) {
	rp, tail, ok := h.lookup(w, r, rest, strings.Contains(rest, "/tree/"))
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case tail == "" || strings.HasPrefix(tail, "revision/"):
		var sib []map[string]string
		for _, n := range rp.names() {
			sib = append(sib, map[string]string{"rfilename": n})
		}
		gated := any(false)
		if rp.gated {
			gated = "manual"
		}
		json.NewEncoder(w).Encode(map[string]any{"_id": "x" + rp.id, "id": rp.id, "modelId": rp.id, "author": strings.Split(rp.id, "/")[0],
			"sha": "0123456789abcdef0123456789abcdef01234567", "private": false, "gated": gated, "disabled": false,
			"tags": []string{"gguf"}, "library_name": "gguf", "siblings": sib})
	case strings.HasPrefix(tail, "tree/"):
		dir := strings.TrimPrefix(strings.TrimPrefix(tail, "tree/"), "main")
		dir = strings.Trim(dir, "/")
		recursive := r.URL.Query().Get("recursive") == "true" || r.URL.Query().Get("recursive") == "1"
		var out []map[string]any
		seenDir := map[string]bool{}
		for _, n := range rp.names() {
			rel := n
			if dir != "" {
				if !strings.HasPrefix(n, dir+"/") {
					continue
				}
				rel = strings.TrimPrefix(n, dir+"/")
			}
			if i := strings.Index(rel, "/"); i >= 0 && !recursive {
				d := path.Join(dir, rel[:i])
				if !seenDir[d] {
					seenDir[d] = true
					out = append(out, map[string]any{"type": "directory", "oid": "d", "size": 0, "path": d})
				}
				continue
			}
			if b := rp.files[n]; b != nil {
				out = append(out, map[string]any{"type": "file", "oid": gitOID(b.sha), "size": b.size, "path": n,
					"lfs": map[string]any{"oid": b.sha, "size": b.size, "pointerSize": 134}})
			} else {
				out = append(out, map[string]any{"type": "file", "oid": gitOID(n), "size": len(rp.other[n]), "path": n})
			}
		}
		if out == nil {
			out = []map[string]any{}
		}
		json.NewEncoder(w).Encode(out)
	default:
		hubError(w, http.StatusNotFound, "EntryNotFound", "not found")
	}
}

func gitOID(s string) string {
	x := sha256.Sum256([]byte("blob " + s))
	return hex.EncodeToString(x[:20])
}

func (rp *repo) names() []string {
	var out []string
	for n := range rp.files {
		out = append(out, n)
	}
	for n := range rp.other {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// search answers GET /api/models?search=Q&limit=N: repos whose id
// contains Q (case-insensitively).
func (h *Hub) search(w http.ResponseWriter, r *http.Request) {
	q := strings.ToLower(r.URL.Query().Get("search"))
	h.mu.Lock()
	var out []map[string]any
	for id := range h.repos {
		if strings.Contains(strings.ToLower(id), q) {
			out = append(out, map[string]any{"_id": "x" + id, "id": id, "modelId": id})
		}
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i]["id"].(string) < out[j]["id"].(string) })
	if out == nil {
		out = []map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// resolve answers /OWNER/NAME/resolve/REV/FILE with a 302 to the CDN and
// the headers the Hub sets (X-Linked-Etag, X-Linked-Size, X-Repo-Commit).
func (h *Hub) resolve(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/")
	parts := strings.SplitN(rest, "/", 5)
	if len(parts) < 5 || parts[2] != "resolve" {
		hubError(w, http.StatusNotFound, "", "not found")
		return
	}
	rp, _, ok := h.lookup(w, r, rest, true)
	if !ok {
		return
	}
	file := parts[4]
	b := rp.files[file]
	if b == nil {
		if body, ok := rp.other[file]; ok {
			w.Write(body)
			return
		}
		hubError(w, http.StatusNotFound, "EntryNotFound", file+" does not exist on \"main\"")
		return
	}
	w.Header().Set("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
	w.Header().Set("X-Linked-Etag", `"`+b.sha+`"`)
	w.Header().Set("X-Linked-Size", fmt.Sprint(b.size))
	w.Header().Set("ETag", `"`+gitOID(b.sha)+`"`)
	w.Header().Set("Location", fmt.Sprintf("%s/repos/%d/%s", h.CDN, b.id, path.Base(file)))
	w.WriteHeader(http.StatusFound)
}

func registryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// serveRegistry answers /v2/NS/NAME/manifests/TAG and
// /v2/NS/NAME/blobs/sha256:HEX (a 307 to the CDN).
func (h *Hub) serveRegistry(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/v2/")
	parts := strings.Split(rest, "/")
	if len(parts) != 4 {
		registryError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
		return
	}
	name, kind, ref := parts[0]+"/"+parts[1], parts[2], parts[3]
	h.mu.Lock()
	defer h.mu.Unlock()
	switch kind {
	case "manifests":
		om := h.ollama[name+":"+ref]
		if om == nil {
			registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
		w.Header().Set("Content-Type", ManifestV2)
		sum := sha256.Sum256(om.manifest)
		w.Header().Set("Docker-Content-Digest", "sha256:"+hex.EncodeToString(sum[:]))
		w.Write(om.manifest)
	case "blobs":
		for k, om := range h.ollama {
			if !strings.HasPrefix(k, name+":") {
				continue
			}
			if b := om.blobs[ref]; b != nil {
				w.Header().Set("Location", fmt.Sprintf("%s/blobs/%d/%s", h.CDN, b.id, b.sha))
				w.WriteHeader(http.StatusTemporaryRedirect)
				return
			}
		}
		registryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
	default:
		registryError(w, http.StatusNotFound, "UNSUPPORTED", "unsupported")
	}
}

// --- the CDN ---

func (h *Hub) serveCDN(w http.ResponseWriter, r *http.Request) {
	// /repos/ID/NAME or /blobs/ID/SHA
	var id int
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) == 3 {
		fmt.Sscan(parts[1], &id)
	}
	h.mu.Lock()
	b := h.blobs[id]
	var f Fault
	if b != nil {
		b.gets++
		if r.Header.Get("Range") != "" {
			b.ranged++
		}
		if b.fault != nil {
			f = *b.fault
			times := max(f.Times, 1)
			if f.CutAt > 0 {
				if b.cuts >= times {
					f.CutAt = 0
				} else {
					b.cuts++
				}
			}
		}
	}
	release := h.release
	h.mu.Unlock()
	if b == nil {
		http.Error(w, "NoSuchKey", http.StatusNotFound)
		return
	}
	file, err := os.Open(b.path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer file.Close()
	fr := &faultReader{f: file, fault: f, hub: h, ctx: r, release: release}
	w.Header().Set("Content-Type", "binary/octet-stream")
	w.Header().Set("ETag", `"`+b.sha+`"`)
	http.ServeContent(countingWriter{w, h, b}, r, "", time.Unix(1700000000, 0), fr)
}

type countingWriter struct {
	http.ResponseWriter
	h *Hub
	b *blob
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.h.mu.Lock()
	c.b.served += int64(n)
	c.h.mu.Unlock()
	return n, err
}

// faultReader is the file as the CDN reads it, with the fault applied.
type faultReader struct {
	f       *os.File
	off     int64
	fault   Fault
	hub     *Hub
	ctx     *http.Request
	release chan struct{}
	stalled bool
}

func (r *faultReader) Seek(off int64, whence int) (int64, error) {
	n, err := r.f.Seek(off, whence)
	r.off = n
	return n, err
}

func (r *faultReader) Read(p []byte) (int, error) {
	if c := r.fault.CutAt; c > 0 && r.off < c && r.off+int64(len(p)) > c {
		p = p[:c-r.off]
	}
	if c := r.fault.CutAt; c > 0 && r.off >= c {
		// The response declared its length; stopping short makes the
		// server close the connection: the client sees it cut.
		panic(http.ErrAbortHandler)
	}
	if s := r.fault.StallAt; s > 0 && !r.stalled {
		if r.off >= s {
			r.stalled = true
			select {
			case r.hub.stalled <- struct{}{}:
			default:
			}
			select {
			case <-r.release:
			case <-r.ctx.Context().Done():
				panic(http.ErrAbortHandler)
			}
		} else if r.off+int64(len(p)) > s {
			p = p[:s-r.off]
		}
	}
	n, err := r.f.Read(p)
	if r.fault.Corrupt {
		for i := 0; i < n; i += 4096 {
			p[i] ^= 0x5a
		}
	}
	r.off += int64(n)
	return n, err
}
