package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/pull"
	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/bytesize"
)

// Pulls: the daemon downloads (package pull) because it owns the cache
// directory and runs as its user; jetai-ctl only watches. `--add NAME`
// writes the drop-in jetai.d/NAME.hcl beside the main config and reloads.

// startPull runs the pull manager until ctx ends; then every pull stops,
// its partial files kept for the next pull to resume.
func (d *Daemon) startPull(ctx context.Context, wg *sync.WaitGroup) {
	if d.cache == nil {
		return
	}
	d.puller = pull.New(pull.Config{Store: d.cache, Log: d.log})
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		d.puller.Close()
	}()
}

// pullOptions reads the pull block in force and picks the Hub token: the
// client's HF_TOKEN, then jetaid's, then pull.hf_token_file.
func (d *Daemon) pullOptions(clientToken string) pull.Options {
	cfg := d.Config()
	o := pull.Options{HFEndpoint: cfg.Pull.HFEndpoint, OllamaRegistry: cfg.Pull.OllamaRegistry}
	switch {
	case clientToken != "":
		o.HFToken, o.TokenFrom = clientToken, "HF_TOKEN from jetai-ctl's environment"
	case os.Getenv("HF_TOKEN") != "":
		o.HFToken, o.TokenFrom = os.Getenv("HF_TOKEN"), "HF_TOKEN in jetaid's environment"
	case cfg.Pull.HFTokenFile != "":
		b, err := os.ReadFile(cfg.Pull.HFTokenFile)
		if err != nil {
			d.log.Warn("pull: hf_token_file unreadable; pulling without a token", "path", cfg.Pull.HFTokenFile, "err", err)
			break
		}
		o.HFToken, o.TokenFrom = strings.TrimSpace(string(b)), "pull.hf_token_file "+cfg.Pull.HFTokenFile
	}
	return o
}

// dropInDir is the drop-in directory beside the main config.
func (d *Daemon) dropInDir() string {
	return filepath.Join(filepath.Dir(d.opts.ConfigPath), "jetai.d")
}

// conflictError: --add NAME names a model that exists.
type conflictError struct{ msg string }

func (e *conflictError) Error() string   { return e.msg }
func (e *conflictError) Code() string    { return "conflict" }
func (e *conflictError) HTTPStatus() int { return http.StatusConflict }

// checkAddName refuses a --add name that is not a model name, or that the
// config or the drop-in directory has already, saying where.
func (d *Daemon) checkAddName(name string) error {
	switch {
	case strings.IndexFunc(name, func(c rune) bool { return unicode.IsSpace(c) || !unicode.IsPrint(c) }) >= 0,
		strings.ContainsAny(name, `/\`), strings.HasPrefix(name, "."), len(name) > 128:
		return admin.Errorf(http.StatusBadRequest, admin.CodeBadRequest, "--add %q: a model name is a short word without spaces, slashes or a leading dot (it names the file jetai.d/NAME.hcl)", name)
	case name == "auto":
		return admin.Errorf(http.StatusBadRequest, admin.CodeBadRequest, "--add auto: \"auto\" is reserved (requests use it to ask for automatic selection)")
	}
	p := filepath.Join(d.dropInDir(), name+".hcl")
	if _, err := os.Lstat(p); err == nil {
		return &conflictError{fmt.Sprintf("--add %s: %s exists already; pick another name, or remove that file (jetai-ctl rm %s) first", name, p, name)}
	}
	cfg := d.Config()
	if m, ok := cfg.Lookup(name); ok {
		where := cfg.Path
		if m.Name != name {
			return &conflictError{fmt.Sprintf("--add %s: %q is already an alias of model %q in %s; pick another name", name, name, m.Name, where)}
		}
		return &conflictError{fmt.Sprintf("--add %s: model %q is already defined in %s; pick another name", name, name, where)}
	}
	return nil
}

// addResult is what the --add step gives back.
type addResult struct {
	model, dropIn, block string
	reload               admin.ReloadResult
}

// addModel writes jetai.d/NAME.hcl for a pulled model and reloads.
func (d *Daemon) addModel(ctx context.Context, name string, r pull.Result) (addResult, error) {
	var model, proj *pull.FileResult
	for i := range r.Files {
		switch r.Files[i].Role {
		case "model":
			if model == nil {
				model = &r.Files[i]
			}
		case "mmproj":
			proj = &r.Files[i]
		}
	}
	if model == nil {
		return addResult{}, fmt.Errorf("--add %s: the pull brought no model file", name)
	}
	if err := d.checkAddName(name); err != nil {
		return addResult{}, err
	}
	cfg := d.Config()
	block, err := d.dropInBlock(ctx, cfg, name, r.Source, model, proj)
	if err != nil {
		return addResult{}, err
	}
	p, err := writeDropIn(d.dropInDir(), name, block)
	if err != nil {
		return addResult{}, err
	}
	d.log.Info("pull: model added", "model", name, "drop_in", p, "path", model.CachePath)
	res := addResult{model: name, dropIn: p, block: block}
	res.reload = d.Reload(ctx, "pull --add "+name)
	return res, nil
}

// dropInBlock renders the drop-in: a comment naming the source, sha256
// and date, the model's facts, and a model block whose context is the
// trained one capped so the memory estimate fits half of memory.budget
// (room for a second model).
func (d *Daemon) dropInBlock(ctx context.Context, cfg *config.Config, name, source string, model, proj *pull.FileResult) (string, error) {
	f, err := gguf.Open(model.CachePath)
	if err != nil {
		return "", fmt.Errorf("--add %s: %w", name, err)
	}
	params, err := f.Params()
	if err != nil {
		return "", fmt.Errorf("--add %s: not a model the engine can size: %w", name, err)
	}
	chat := "a chat template"
	if d.ingest != nil {
		// A trial load by the engine, in a child process: a file that
		// llama.cpp cannot load gets no drop-in.
		facts, err := d.ingest.Inspect(ctx, model.CachePath)
		if err != nil {
			return "", fmt.Errorf("--add %s: %w (the file stays in the cache)", name, err)
		}
		if !facts.ChatTemplate {
			chat = "no usable chat template: send plain prompts (/v1/completions)"
		}
	}
	ctxLen, est, limit := fitContext(cfg, params)
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `jetai-ctl pull %s --add %s` on %s.\n", source, name, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "# file:   %s\n# sha256: %s\n", model.Origin, model.SHA256)
	fmt.Fprintf(&b, "# %s, %s on disk, trained context %d, %s.\n", params.Architecture, bytesize.IEC(uint64(model.Size)), params.ContextLength, chat)
	fmt.Fprintf(&b, "# context %d: the largest up to the trained one whose memory estimate (%s at parallel %d) fits half of memory.budget (%s).\n",
		ctxLen, bytesize.IEC(est.Total), config.DefaultParallel, bytesize.IEC(limit))
	if proj != nil {
		fmt.Fprintf(&b, "# projector (images) %s is in the cache too: %s\n", proj.Origin, proj.CachePath)
	}
	fmt.Fprintf(&b, "model %q {\n  path     = %q\n  context  = %d\n  parallel = %d\n}\n", name, model.CachePath, ctxLen, config.DefaultParallel)
	return b.String(), nil
}

// fitContext halves the trained context until the model's estimate fits
// half the budget (not below 512).
func fitContext(cfg *config.Config, p gguf.Params) (int, pool.Estimate, uint64) {
	limit := uint64(cfg.Memory.Budget) / 2
	c := int(p.ContextLength)
	if c <= 0 {
		c = config.DefaultContext
	}
	m := config.Model{Context: c, Parallel: config.DefaultParallel, KVCache: cfg.Memory.KVCache}
	est := pool.EstimateParams(p, m, pool.DefaultRunnerOverhead)
	for limit > 0 && est.Total > limit && m.Context > 512 {
		m.Context = max(m.Context/2, 512)
		est = pool.EstimateParams(p, m, pool.DefaultRunnerOverhead)
	}
	return m.Context, est, limit
}

// writeDropIn writes dir/NAME.hcl through a temporary file (whose name
// does not end in .hcl, so a reload meanwhile does not read it) and a
// link, which refuses an existing file instead of replacing it.
func writeDropIn(dir, name, content string) (string, error) {
	final := filepath.Join(dir, name+".hcl")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("--add %s: %w (jetaid writes drop-ins as its own user: make %s writable by it)", name, err, dir)
	}
	tmp, err := os.CreateTemp(dir, "."+name+".hcl.tmp-*")
	if err != nil {
		return "", fmt.Errorf("--add %s: %w (jetaid writes drop-ins as its own user: make %s writable by it)", name, err, dir)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(content)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("--add %s: %w", name, err)
	}
	if err := os.Link(tmp.Name(), final); err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", &conflictError{fmt.Sprintf("--add %s: %s exists already; pick another name", name, final)}
		}
		return "", fmt.Errorf("--add %s: %w", name, err)
	}
	if dd, err := os.Open(dir); err == nil {
		dd.Sync()
		dd.Close()
	}
	return final, nil
}

// The admin socket's pull endpoints (admin.Puller).
var _ admin.Puller = adminBackend{}

func (b adminBackend) Pull(ctx context.Context, req admin.PullRequest, events func(admin.PullEvent)) (admin.PullResult, error) {
	d := b.d
	src, err := pull.ParseSource(req.Source)
	if err != nil {
		return admin.PullResult{}, err
	}
	if d.puller == nil {
		return admin.PullResult{}, errNoCache
	}
	key := src.String()
	var after pull.After
	if req.Add != "" {
		// Refused before any byte, and again when writing (the name may
		// have been taken meanwhile).
		if err := d.checkAddName(req.Add); err != nil {
			return admin.PullResult{}, err
		}
		key += " --add " + req.Add
		name := req.Add
		after = func(ctx context.Context, r pull.Result) (any, error) { return d.addModel(ctx, name, r) }
	}
	p, joined, err := d.puller.Start(key, src, d.pullOptions(req.HFToken), after)
	if err != nil {
		return admin.PullResult{}, err
	}
	if !joined {
		d.log.Info("pull started", "source", src.String(), "add", req.Add)
	}
	res, err := p.Watch(ctx, 250*time.Millisecond, func(ev pull.Event) {
		if ev.Phase != pull.PhaseDone && ev.Phase != pull.PhaseError {
			events(admin.PullEvent(ev))
		}
	})
	if err != nil {
		return admin.PullResult{}, err
	}
	out := admin.PullResult{Source: res.Source, Note: res.Note, Fetched: res.Fetched, Seconds: res.Seconds, Files: []admin.PulledFile{}}
	for _, f := range res.Files {
		out.Files = append(out.Files, admin.PulledFile{Name: f.Name, Path: f.CachePath, Origin: f.Origin, Role: f.Role, Size: f.Size,
			SHA256: f.SHA256, Cached: f.Cached, Resumed: f.Resumed, Fetched: f.Fetched})
	}
	if a, ok := res.After.(addResult); ok {
		out.Model, out.DropIn, out.Block, out.Reload = a.model, a.dropIn, a.block, &a.reload
	}
	return out, nil
}

func (b adminBackend) CancelPull(ctx context.Context, req admin.PullCancelRequest) (admin.PullCancelResult, error) {
	src, err := pull.ParseSource(req.Source)
	if err != nil {
		return admin.PullCancelResult{}, err
	}
	if b.d.puller == nil {
		return admin.PullCancelResult{}, errNoCache
	}
	keys := b.d.puller.Cancel(src, req.Discard)
	if len(keys) == 0 && !req.Discard {
		return admin.PullCancelResult{}, admin.Errorf(http.StatusNotFound, admin.CodeNotFound, "no pull of %s is running (see jetai-ctl pull --list)", src)
	}
	b.d.log.Info("pull canceled", "source", src.String(), "discard", req.Discard)
	return admin.PullCancelResult{Canceled: append([]string{}, keys...)}, nil
}

func (b adminBackend) Pulls(ctx context.Context) ([]admin.PullStatus, error) {
	if b.d.puller == nil {
		return nil, errNoCache
	}
	var out []admin.PullStatus
	for _, s := range b.d.puller.List() {
		out = append(out, admin.PullStatus{Key: s.Key, Source: s.Source, Started: s.Started, PullEvent: admin.PullEvent(s.Event)})
	}
	return out, nil
}
