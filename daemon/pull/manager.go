package pull

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jetai/jetai/daemon/cache"
	"github.com/jetai/jetai/internal/bytesize"
)

// Options are where one pull downloads from, read from the config in
// force when it starts.
type Options struct {
	HFEndpoint     string // e.g. https://huggingface.co
	OllamaRegistry string // e.g. https://registry.ollama.ai
	HFToken        string
	// TokenFrom says where HFToken came from, for messages (never the
	// token itself).
	TokenFrom string
}

// Store is the model cache as a pull uses it (*cache.Cache).
type Store interface {
	DownloadsDir() (string, error)
	Lookup(name string) (cache.Entry, bool)
	Reserve(size int64) error
	AddVerified(ctx context.Context, path, name, src, origin, sum string) (cache.Entry, error)
}

// Config configures a Manager.
type Config struct {
	Store Store
	// Client makes the HTTP requests; default: one with connect and
	// header timeouts and no overall timeout (a model takes minutes).
	Client *http.Client
	Log    *slog.Logger
	// Retries bounds consecutive failed attempts of one file that made
	// no progress; default 6. Backoff is the first wait, doubled each
	// time up to 30s; default 500ms.
	Retries int
	Backoff time.Duration
	// StallTimeout ends a request that has sent no byte for this long (a
	// dropped Wi-Fi link often leaves the connection open but silent);
	// the download then resumes with a new one. Default 60s.
	StallTimeout time.Duration
	// FreeSpace returns the bytes free for unprivileged writers on dir's
	// file system; default statfs. Tests replace it.
	FreeSpace func(dir string) (int64, error)
}

// File is one file a source resolves to.
type File struct {
	Name   string `json:"name"` // file name in the cache
	Path   string `json:"path"` // in the repo, or the registry digest
	URL    string `json:"url"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Role   string `json:"role"`   // model, split (a further part) or mmproj
	Origin string `json:"origin"` // recorded as the cache entry's source
	auth   bool   // send the Hub token
}

// Plan is what a source resolves to.
type Plan struct {
	Source Source `json:"source"`
	Files  []File `json:"files"`
	// Note says which quant was picked when the one asked for (or the
	// default) was not there.
	Note string `json:"note,omitempty"`
}

// Phases of a pull, in order; done and error are final.
const (
	PhaseResolve  = "resolve"
	PhaseDownload = "download"
	PhaseVerify   = "verify"
	PhaseAdd      = "add"
	PhaseDone     = "done"
	PhaseError    = "error"
)

// Event is a pull's state as its watchers see it.
type Event struct {
	Phase   string  `json:"phase"`
	File    string  `json:"file,omitempty"`
	SHA256  string  `json:"sha256,omitempty"` // File's declared sha256
	Done    int64   `json:"done"`             // bytes of all files present
	Total   int64   `json:"total"`            // bytes of all files
	Rate    float64 `json:"rate"`             // bytes/s, recent
	Message string  `json:"message,omitempty"`
}

// FileResult is one file of a finished pull.
type FileResult struct {
	File
	CachePath string `json:"cache_path"`
	Cached    bool   `json:"cached"`  // it was in the cache already
	Resumed   int64  `json:"resumed"` // bytes taken from an earlier partial download
	Fetched   int64  `json:"fetched"` // bytes downloaded by this pull
}

// Result is a finished pull. After holds what the pull's after-step
// (the daemon's --add) returned.
type Result struct {
	Source  string       `json:"source"`
	Note    string       `json:"note,omitempty"`
	Files   []FileResult `json:"files"`
	Fetched int64        `json:"fetched"`
	Seconds float64      `json:"seconds"`
	After   any          `json:"after,omitempty"`
}

// Status is a running pull.
type Status struct {
	Key     string    `json:"key"`
	Source  string    `json:"source"`
	Started time.Time `json:"started"`
	Event
}

// Manager runs pulls. Safe for concurrent use.
type Manager struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger

	mu      sync.Mutex
	pulls   map[string]*Pull   // running, by key
	flights map[string]*flight // running file downloads, by cache name
	wg      sync.WaitGroup
	bg      context.Context
	stop    context.CancelFunc
}

// New builds a Manager.
func New(cfg Config) *Manager {
	if cfg.Client == nil {
		d := &net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}
		cfg.Client = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, DialContext: d.DialContext, ForceAttemptHTTP2: true,
			TLSHandshakeTimeout: 15 * time.Second, ResponseHeaderTimeout: 60 * time.Second,
			MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second,
			// Model files are compressed already; a gzip layer would
			// only cost CPU and break Range offsets.
			DisableCompression: true,
		}}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Retries <= 0 {
		cfg.Retries = 6
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 60 * time.Second
	}
	if cfg.FreeSpace == nil {
		cfg.FreeSpace = freeSpace
	}
	m := &Manager{cfg: cfg, client: cfg.Client, log: cfg.Log, pulls: map[string]*Pull{}, flights: map[string]*flight{}}
	m.bg, m.stop = context.WithCancel(context.Background())
	return m
}

// Close cancels every pull (partial files stay, to be resumed) and waits
// for them.
func (m *Manager) Close() {
	m.stop()
	m.wg.Wait()
}

func freeSpace(dir string) (int64, error) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return 0, err
	}
	return int64(fs.Bavail) * int64(fs.Bsize), nil
}

// After runs once the files are in the cache (the daemon's --add); its
// value goes into Result.After. It runs under the pull's context.
type After func(ctx context.Context, r Result) (any, error)

// Pull is one running (or finished) pull.
type Pull struct {
	Key     string
	Source  Source
	Started time.Time

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	ev      Event
	changed chan struct{}
	plan    Plan
	res     Result
	err     error
	// rate
	rateAt    time.Time
	rateBytes int64
}

// Start starts pulling src, or joins the running pull of the same key
// (joined true). key tells pulls apart: the source, and what after does
// (the daemon uses the source and the --add name). The pull runs under
// the Manager, not the caller: a caller that goes away leaves it running.
func (m *Manager) Start(key string, src Source, o Options, after After) (p *Pull, joined bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bg.Err() != nil {
		return nil, false, errorf(http.StatusServiceUnavailable, "unavailable", "the daemon is stopping")
	}
	if p := m.pulls[key]; p != nil {
		return p, true, nil
	}
	p = &Pull{Key: key, Source: src, Started: time.Now(), done: make(chan struct{}), changed: make(chan struct{}),
		ev: Event{Phase: PhaseResolve, Message: "resolving " + src.String()}}
	p.ctx, p.cancel = context.WithCancel(m.bg)
	m.pulls[key] = p
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		res, err := m.run(p, o, after)
		m.mu.Lock()
		delete(m.pulls, key)
		m.mu.Unlock()
		p.finish(res, err)
	}()
	return p, false, nil
}

// Resolve resolves src without downloading.
func (m *Manager) Resolve(ctx context.Context, o Options, src Source) (Plan, error) {
	switch src.Kind {
	case KindOllama:
		return m.resolveOllama(ctx, o, src)
	default:
		return m.resolveHF(ctx, o, src)
	}
}

func (m *Manager) run(p *Pull, o Options, after After) (Result, error) {
	start := time.Now()
	res := Result{Source: p.Source.String()}
	plan, err := m.Resolve(p.ctx, o, p.Source)
	if err != nil {
		return res, m.ctxErr(p.ctx, err)
	}
	p.mu.Lock()
	p.plan = plan
	p.mu.Unlock()
	res.Note = plan.Note
	if plan.Note != "" {
		m.log.Info("pull: quant picked", "source", p.Source.String(), "note", plan.Note)
	}
	dir, err := m.cfg.Store.DownloadsDir()
	if err != nil {
		return res, err
	}
	// What is there already, and what is missing.
	var total, need int64
	have := map[string]bool{}
	for _, f := range plan.Files {
		total += f.Size
		if e, ok := m.cfg.Store.Lookup(f.Name); ok && e.SHA256 == f.SHA256 {
			have[f.Name] = true
			continue
		}
		need += f.Size
		if st, err := os.Stat(filepath.Join(dir, f.Name+".partial")); err == nil && st.Size() <= f.Size {
			if sc, err := readSidecar(filepath.Join(dir, f.Name+".partial.json")); err == nil && sc.SHA256 == f.SHA256 {
				need -= st.Size()
			}
		}
	}
	if need > 0 {
		if err := m.checkSpace(dir, need); err != nil {
			return res, err
		}
	}
	var base int64
	for _, f := range plan.Files {
		if have[f.Name] {
			e, _ := m.cfg.Store.Lookup(f.Name)
			res.Files = append(res.Files, FileResult{File: f, CachePath: e.Path, Cached: true})
			base += f.Size
			p.update(Event{Phase: PhaseDownload, File: f.Name, Done: base, Total: total, Message: f.Name + " is in the cache already"})
			continue
		}
		b := base
		fr, err := m.file(p.ctx, o, f, func(phase string, n int64, msg string) {
			p.update(Event{Phase: phase, File: f.Name, SHA256: f.SHA256, Done: b + n, Total: total, Message: msg})
		})
		if err != nil {
			return res, m.ctxErr(p.ctx, err)
		}
		base += f.Size
		res.Files = append(res.Files, fr)
		res.Fetched += fr.Fetched
	}
	res.Seconds = time.Since(start).Seconds()
	m.log.Info("pulled", "source", p.Source.String(), "files", len(res.Files), "bytes", total, "fetched", res.Fetched, "seconds", res.Seconds)
	if after != nil {
		p.update(Event{Phase: PhaseAdd, Done: total, Total: total})
		v, err := after(p.ctx, res)
		if err != nil {
			return res, err
		}
		res.After = v
	}
	return res, nil
}

// ctxErr says "canceled" for an error that a cancel caused.
func (m *Manager) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if m.bg.Err() != nil {
		return errorf(http.StatusServiceUnavailable, CodeCanceled, "the daemon stopped; the partial download stays and the same pull resumes it")
	}
	return errorf(http.StatusConflict, CodeCanceled, "pull canceled")
}

// checkSpace refuses a download that the disk or max_size cannot hold,
// before any byte is written.
func (m *Manager) checkSpace(dir string, need int64) error {
	free, err := m.cfg.FreeSpace(dir)
	if err == nil && free < need {
		return errorf(http.StatusInsufficientStorage, CodeNoSpace, "not enough disk space in %s: the download needs %s more, %s is free: %s missing; free some space or point cache.dir at a larger disk",
			dir, bytesize.IEC(uint64(need)), bytesize.IEC(uint64(free)), bytesize.IEC(uint64(need-free)))
	}
	if err := m.cfg.Store.Reserve(need); err != nil {
		return fmt.Errorf("the download needs %s: %w", bytesize.IEC(uint64(need)), err)
	}
	return nil
}

// Cancel cancels the running pulls of src (every --add of it); with
// discard their partial files are deleted too once they stopped. It
// returns the keys canceled.
func (m *Manager) Cancel(src Source, discard bool) []string {
	m.mu.Lock()
	var ps []*Pull
	for _, p := range m.pulls {
		if p.Source.String() == src.String() {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 && src.Kind == KindHF && src.Quant == "" && src.File == "" {
		// "hf.co/OWNER/REPO" cancels whatever pull of that repo runs,
		// however it was spelled.
		for _, p := range m.pulls {
			if p.Source.Kind == KindHF && strings.EqualFold(p.Source.RepoID(), src.RepoID()) {
				ps = append(ps, p)
			}
		}
	}
	m.mu.Unlock()
	var keys []string
	for _, p := range ps {
		p.cancel()
		keys = append(keys, p.Key)
	}
	for _, p := range ps {
		<-p.done
	}
	if discard {
		m.discard(src)
	}
	sort.Strings(keys)
	return keys
}

// discard deletes the partial files of src's files that no running
// download uses.
func (m *Manager) discard(src Source) {
	dir, err := m.cfg.Store.DownloadsDir()
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	prefix := ""
	switch src.Kind {
	case KindOllama:
		prefix = cacheName("ollama--" + src.Namespace + "--" + src.Name + "--" + src.Tag)
	default:
		prefix = cacheName(src.Owner + "--" + src.Repo + "--")
	}
	prefix = prefix[:len(prefix)-len(".gguf")]
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		n := e.Name()
		base, ok := cutSuffix(n, ".partial", ".partial.json")
		if !ok || !hasPrefix(base, prefix) || m.flights[base] != nil {
			continue
		}
		if src.Kind == KindHF && src.File != "" && base != cacheName(src.Owner+"--"+src.Repo+"--"+filepath.Base(src.File)) {
			continue
		}
		os.Remove(filepath.Join(dir, n))
	}
}

func cutSuffix(s string, suffixes ...string) (string, bool) {
	for _, x := range suffixes {
		if len(s) > len(x) && s[len(s)-len(x):] == x {
			return s[:len(s)-len(x)], true
		}
	}
	return s, false
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// List returns the running pulls.
func (m *Manager) List() []Status {
	m.mu.Lock()
	ps := make([]*Pull, 0, len(m.pulls))
	for _, p := range m.pulls {
		ps = append(ps, p)
	}
	m.mu.Unlock()
	out := []Status{}
	for _, p := range ps {
		p.mu.Lock()
		out = append(out, Status{Key: p.Key, Source: p.Source.String(), Started: p.Started, Event: p.ev})
		p.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// update sets the pull's state, with a rate over the last second or so.
func (p *Pull) update(ev Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.rateAt.IsZero() || ev.Done < p.rateBytes {
		p.rateAt, p.rateBytes = now, ev.Done
	}
	if dt := now.Sub(p.rateAt); dt >= time.Second {
		r := float64(ev.Done-p.rateBytes) / dt.Seconds()
		if p.ev.Rate > 0 {
			r = 0.5*r + 0.5*p.ev.Rate
		}
		p.ev.Rate = r
		p.rateAt, p.rateBytes = now, ev.Done
	} else if p.ev.Rate == 0 && dt > 200*time.Millisecond {
		p.ev.Rate = float64(ev.Done-p.rateBytes) / dt.Seconds()
	}
	ev.Rate = p.ev.Rate
	if ev.Phase != PhaseDownload {
		ev.Rate = 0
	}
	p.ev = ev
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Pull) finish(res Result, err error) {
	p.mu.Lock()
	p.res, p.err = res, err
	p.ev.Rate = 0
	if err != nil {
		p.ev.Phase, p.ev.Message = PhaseError, err.Error()
	} else {
		p.ev.Phase, p.ev.Message, p.ev.Done = PhaseDone, "", p.ev.Total
	}
	p.mu.Unlock()
	close(p.done)
}

// Done is closed when the pull has finished.
func (p *Pull) Done() <-chan struct{} { return p.done }

// Cancel cancels the pull; its partial files stay.
func (p *Pull) Cancel() { p.cancel() }

// Result waits for the pull's end (or ctx's) and returns its outcome.
func (p *Pull) Result(ctx context.Context) (Result, error) {
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Watch calls fn with the pull's state as it changes, at most every
// interval, until the pull ends (then it returns its outcome) or ctx does
// (then ctx's error: the pull goes on).
func (p *Pull) Watch(ctx context.Context, interval time.Duration, fn func(Event)) (Result, error) {
	var last Event
	first := true
	for {
		p.mu.Lock()
		ev, ch := p.ev, p.changed
		p.mu.Unlock()
		if first || ev != last {
			fn(ev)
			last, first = ev, false
		}
		select {
		case <-p.done:
			return p.res, p.err
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-ch:
		}
		select {
		case <-p.done:
			return p.res, p.err
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// flight is one file being downloaded, shared by every pull that needs it.
type flight struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	refs   int
	phase  atomic.Pointer[string]
	n      atomic.Int64 // bytes present
	res    FileResult
	err    error
}

// file downloads f into the cache, or waits for the download of it that
// runs already. The download stops when no pull waits for it any more.
func (m *Manager) file(ctx context.Context, o Options, f File, progress func(phase string, n int64, msg string)) (FileResult, error) {
	var fl *flight
	for {
		m.mu.Lock()
		fl = m.flights[f.Name]
		if fl == nil {
			fl = &flight{done: make(chan struct{})}
			fl.ctx, fl.cancel = context.WithCancel(m.bg)
			m.flights[f.Name] = fl
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				res, err := m.download(fl.ctx, o, f, fl)
				m.mu.Lock()
				delete(m.flights, f.Name)
				m.mu.Unlock()
				fl.res, fl.err = res, err
				fl.cancel()
				close(fl.done)
			}()
		} else if fl.ctx.Err() != nil {
			// Ending: wait, then start anew.
			m.mu.Unlock()
			<-fl.done
			continue
		}
		fl.refs++
		m.mu.Unlock()
		break
	}
	defer func() {
		m.mu.Lock()
		fl.refs--
		last := fl.refs == 0
		if last {
			fl.cancel()
		}
		m.mu.Unlock()
		if last {
			// Stopped means stopped: no byte written after the pull ends.
			<-fl.done
		}
	}()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-fl.done:
			if fl.err != nil && errors.Is(fl.err, context.Canceled) && ctx.Err() == nil {
				return FileResult{}, fmt.Errorf("%s: the download shared with another pull was canceled; pull again to resume it", f.Name)
			}
			return fl.res, fl.err
		case <-ctx.Done():
			return FileResult{}, ctx.Err()
		case <-t.C:
			ph := PhaseDownload
			if s := fl.phase.Load(); s != nil {
				ph = *s
			}
			progress(ph, fl.n.Load(), "")
		}
	}
}
