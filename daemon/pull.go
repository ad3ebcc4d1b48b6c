package daemon

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/daemon/pull"
	"github.com/jetai/jetai/gguf"
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

// addPulled adds a pulled model as the drop-in jetai.d/NAME.hcl and
// reloads (AddModelDropIn), after a trial load by the engine in a child
// process, so a file that llama.cpp cannot load gets no drop-in.
func (d *Daemon) addPulled(ctx context.Context, name string, r pull.Result) (admin.DropInResult, error) {
	var model *pull.FileResult
	for i := range r.Files {
		if r.Files[i].Role == "model" {
			model = &r.Files[i]
			break
		}
	}
	if model == nil {
		return admin.DropInResult{}, fmt.Errorf("add %s: the pull brought no model file", name)
	}
	if d.ingest != nil {
		if _, err := d.ingest.Inspect(ctx, model.CachePath); err != nil {
			return admin.DropInResult{}, fmt.Errorf("add %s: %w (the file stays in the cache)", name, err)
		}
	}
	return d.addModelDropIn(ctx, name, model.CachePath, d.pulledProjector(name, model.CachePath, r), r.Source, model.SHA256)
}

// pulledProjector is the projector a pull brought beside its model, when
// its output width is the model's embedding length ("" otherwise: the
// model is added for text, and the log says why).
func (d *Daemon) pulledProjector(name, modelPath string, r pull.Result) string {
	for _, f := range r.Files {
		if f.Role != "mmproj" {
			continue
		}
		p, err := gguf.ReadProjector(f.CachePath)
		if err != nil {
			d.log.Warn("pull: the projector is not usable; the model is added for text only", "model", name, "mmproj", f.CachePath, "err", err)
			return ""
		}
		g, err := gguf.Open(modelPath)
		if err != nil {
			return ""
		}
		params, err := g.Params()
		if err != nil || params.EmbeddingLength != uint64(p.TextEmbd) {
			d.log.Warn("pull: the projector's width is not the model's embedding length; the model is added for text only", "model", name, "mmproj", f.CachePath, "projector_width", p.TextEmbd, "model_width", params.EmbeddingLength)
			return ""
		}
		return f.CachePath
	}
	return ""
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
		if err := d.CheckAddName(req.Add); err != nil {
			return admin.PullResult{}, err
		}
		key += " --add " + req.Add
		name := req.Add
		after = func(ctx context.Context, r pull.Result) (any, error) { return d.addPulled(ctx, name, r) }
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
	if a, ok := res.After.(admin.DropInResult); ok {
		out.Model, out.DropIn, out.Block, out.Context, out.Generation = a.Model, a.File, a.Content, a.Reason, a.Generation
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

// ollamaModels is the API's /api/pull and /api/delete (api.Models): the
// admin socket's pull and rm, with a re-pull of a model that a pull of the
// same source added refreshing its file instead of refusing the name.
type ollamaModels struct{ d *Daemon }

func (m ollamaModels) Pull(ctx context.Context, req admin.PullRequest, events func(admin.PullEvent)) (admin.PullResult, error) {
	if req.Add != "" && m.d.pulledFrom(req.Add, req.Source) {
		req.Add = ""
	}
	return adminBackend{m.d}.Pull(ctx, req, events)
}

func (m ollamaModels) RemoveModel(ctx context.Context, req admin.RemoveRequest) (admin.RemoveResult, error) {
	return m.d.RemoveModel(ctx, req)
}

// pulledFrom reports whether model name serves a cached file that a pull
// of source brought (its cache record's source is the source's file).
func (d *Daemon) pulledFrom(name, source string) bool {
	src, err := pull.ParseSource(source)
	if err != nil || d.cache == nil {
		return false
	}
	mc, ok := d.Config().Lookup(name)
	if !ok || mc.Name != name {
		return false
	}
	for _, e := range d.cache.Entries() {
		if e.Path == mc.Path && e.Origin == "pulled" && strings.HasPrefix(e.Source, src.String()+"@") {
			return true
		}
	}
	return false
}
