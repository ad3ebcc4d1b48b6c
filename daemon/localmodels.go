package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/dropin"
	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/bytesize"
)

// Local models: --add writes a drop-in (jetai.d/NAME.hcl) for a model file
// and reloads; ls lists the model files; rm unloads a model, removes its
// drop-in and its file. Writers run one at a time (Daemon.dropIns).

// AddModelDropIn writes a drop-in config file jetai.d/NAME.hcl with one
// model block for the GGUF at path (absolute) and reloads, so that the
// model serves when it returns. The block's comment names source (a pull
// reference, or the file an import copied), sha256 (the file's, "" when
// not known) and the date; its context is the file's trained context
// capped to the memory budget (dropin.FitContext). A NAME that is already
// a model name or alias, in the config in force or in the files on disk,
// is refused with where it is defined (code name_taken, 409). A reload that
// rejects the result removes the drop-in again and returns the reload's
// diagnostics (code config_rejected, 422): nothing is left behind.
func (d *Daemon) AddModelDropIn(ctx context.Context, name, path, source, sha256 string) (admin.DropInResult, error) {
	return d.addModelDropIn(ctx, name, path, "", source, sha256)
}

// addModelDropIn is AddModelDropIn for a model with a vision projector
// (mmproj "" for none).
func (d *Daemon) addModelDropIn(ctx context.Context, name, path, mmproj, source, sha256 string) (admin.DropInResult, error) {
	d.dropIns.Lock()
	defer d.dropIns.Unlock()
	if err := d.CheckAddName(name); err != nil {
		return admin.DropInResult{}, err
	}
	cfg := d.Config()
	if !filepath.IsAbs(path) {
		return admin.DropInResult{}, dropin.Errorf(http.StatusBadRequest, admin.CodeBadRequest, "add %s: the model file's path %q is not absolute", name, path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return admin.DropInResult{}, dropin.Errorf(http.StatusUnprocessableEntity, "bad_model_file", "add %s: %v", name, err)
	}
	g, err := gguf.Open(path)
	if err != nil {
		return admin.DropInResult{}, dropin.Errorf(http.StatusUnprocessableEntity, "bad_model_file", "add %s: %s is not a GGUF model: %v", name, path, err)
	}
	params, err := g.Params()
	if err != nil {
		return admin.DropInResult{}, dropin.Errorf(http.StatusUnprocessableEntity, "bad_model_file", "add %s: %s: not a model jetai can size: %v", name, path, err)
	}
	kv, blockKV := cfg.Memory.KVCache, ""
	if gguf.KVCacheQuantized(kv) {
		// A quantized cache needs flash attention, which not every model's
		// heads take; the added block keeps to f16.
		kv, blockKV = gguf.KVCacheF16, gguf.KVCacheF16
	}
	fit, err := dropin.FitContext(params, uint64(cfg.Memory.Budget), kv, mmproj)
	if err != nil {
		return admin.DropInResult{}, fmt.Errorf("add %s: %w", name, err)
	}
	fit.KVCache = blockKV
	facts := fmt.Sprintf("%s, %s, %s parameters, %s on disk", params.Architecture, orUnknown(quantOf(g)), humanCount(paramCount(g)), bytesize.IEC(uint64(st.Size())))
	content := dropin.Render(dropin.Block{Name: name, Path: path, Mmproj: mmproj, Source: source, SHA256: sha256, Added: time.Now(), Facts: facts, Fit: fit})
	file, err := dropin.Write(cfg.DropInDirOrDefault(), name, content)
	if err != nil {
		return admin.DropInResult{}, err
	}
	res := d.Reload(ctx, "add "+name)
	if _, ok := d.Config().Lookup(name); !res.OK || !ok {
		dropin.Remove(file)
		msg := res.Error
		if msg == "" {
			msg = "the reload did not put it in force"
		}
		return admin.DropInResult{}, dropin.Errorf(http.StatusUnprocessableEntity, "config_rejected", "add %s: the config with %s does not load, so it was removed again:\n%s", name, file, msg)
	}
	d.log.Info("model added", "model", name, "drop_in", file, "path", path, "source", source, "context", fit.Context, "parallel", fit.Parallel)
	return admin.DropInResult{File: file, Model: name, Context: fit.Context, Parallel: fit.Parallel, TrainedContext: fit.TrainedContext,
		EstimateBytes: fit.Estimate.Total, BudgetBytes: fit.Budget, Reason: fit.Reason, Content: string(content),
		Generation: d.ReloadStatus().Generation}, nil
}

// CheckAddName refuses a NAME that --add cannot use: not a valid name, a
// model name or alias in force or in the config files on disk (which a
// reload may not have read yet, said where: file:line:col), or an existing
// drop-in file. Callers that fetch or copy a file before AddModelDropIn
// call it first, so a taken name costs nothing; AddModelDropIn checks
// again.
func (d *Daemon) CheckAddName(name string) error {
	if err := dropin.CheckName(name); err != nil {
		return err
	}
	cfg := d.Config()
	if err := nameTaken(cfg, name); err != nil {
		return err
	}
	if disk, err := config.Load(cfg.Path); err == nil {
		if err := nameTaken(disk, name); err != nil {
			return err
		}
	}
	if f := dropin.FileName(cfg.DropInDirOrDefault(), name); fileExists(f) {
		return dropin.Errorf(http.StatusConflict, "name_taken", "the drop-in file %s exists already; choose another name or remove it (jetai-ctl rm %s)", f, name)
	}
	return nil
}

func nameTaken(cfg *config.Config, name string) error {
	m, ok := cfg.Lookup(name)
	if !ok {
		return nil
	}
	if m.Name == name {
		return dropin.Errorf(http.StatusConflict, "name_taken", "model %q exists already, defined at %s; choose another name", name, m.DefinedAt)
	}
	return dropin.Errorf(http.StatusConflict, "name_taken", "%q is an alias of model %q, defined at %s; choose another name", name, m.Name, m.DefinedAt)
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// quantOf names the file's quantization: general.file_type, or, in a file
// without it, the type of most of its tensor bytes.
func quantOf(g *gguf.File) string {
	if ft, ok := g.FileType(); ok {
		if n := gguf.FileTypeName(ft); n != "" {
			return n
		}
	}
	bytes := map[gguf.GGMLType]uint64{}
	var top gguf.GGMLType
	for _, t := range g.Tensors {
		bytes[t.Type] += t.Size
		if bytes[t.Type] > bytes[top] {
			top = t.Type
		}
	}
	if len(g.Tensors) == 0 {
		return ""
	}
	return strings.ToUpper(top.String())
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown quantization"
	}
	return s
}

// paramCount is the number of weights: the elements of every tensor.
func paramCount(g *gguf.File) uint64 {
	var n uint64
	for _, t := range g.Tensors {
		n += t.Elements()
	}
	return n
}

func humanCount(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// LocalFiles lists the model files the daemon knows: those in the model
// cache (imported, quantized or pulled; staged copies of configured files
// are the cache's business and `jetai-ctl cache` shows them) and those
// the config's models name, with what their GGUF headers say and which
// models use them.
func (d *Daemon) LocalFiles(ctx context.Context) (admin.LocalFiles, error) {
	cfg := d.Config()
	out := admin.LocalFiles{DropInDir: cfg.DropInDirOrDefault(), Files: []admin.LocalFile{}}
	byPath := map[string]*admin.LocalFile{}
	get := func(p string) *admin.LocalFile {
		if f := byPath[p]; f != nil {
			return f
		}
		f := &admin.LocalFile{Path: p, Models: []admin.FileModel{}}
		byPath[p] = f
		return f
	}
	if d.cache != nil {
		out.CacheDir = d.cache.Dir()
		for _, e := range d.cache.Entries() {
			if e.Origin == "staged" {
				continue
			}
			f := get(e.Path)
			f.InCache, f.Size, f.SHA256, f.Source, f.Origin = true, e.Size, e.SHA256, e.Source, e.Origin
		}
	}
	states := map[string]string{}
	for _, m := range d.pool.Models() {
		states[m.Name] = m.State
	}
	for _, m := range cfg.Models {
		f := get(m.Path)
		if f.Origin == "" {
			f.Origin = "config"
		}
		f.Models = append(f.Models, admin.FileModel{Name: m.Name, DefinedAt: m.DefinedAt, DropIn: m.File != "" && m.File != cfg.Path, State: states[m.Name]})
	}
	for _, f := range byPath {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		describeFile(f)
		out.Files = append(out.Files, *f)
	}
	sort.Slice(out.Files, func(i, j int) bool { return out.Files[i].Path < out.Files[j].Path })
	return out, nil
}

// describeFile fills in what the file's GGUF header says (only the header
// is read).
func describeFile(f *admin.LocalFile) {
	st, err := os.Stat(f.Path)
	if err != nil {
		f.Error = unwrapPathErr(err).Error()
		return
	}
	f.Size = st.Size()
	g, err := gguf.Open(f.Path)
	if err != nil {
		f.Error = "not a readable GGUF model: " + err.Error()
		return
	}
	f.Architecture = g.Architecture()
	f.Quant = quantOf(g)
	f.Parameters = paramCount(g)
	if n, err := g.ContextLength(); err == nil {
		f.ContextTrain = int(min(n, 1<<30))
	}
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// RemoveModel removes a model and its file. req.Target is a model name or
// alias, a model file's path, or the name of a file in the model cache.
// Each config model that uses the file is unloaded (after its running
// requests finish; ending ctx gives up and changes nothing), its drop-in
// is deleted and the config reloaded; then the file is deleted from the
// model cache. It refuses, changing nothing, a file or model that the
// main config file references (saying where: that block is a person's to
// change) and a drop-in that also defines models of other files. A file
// outside the model cache is not the daemon's and stays (Kept says so).
func (d *Daemon) RemoveModel(ctx context.Context, req admin.RemoveRequest) (admin.RemoveResult, error) {
	d.dropIns.Lock()
	defer d.dropIns.Unlock()
	res := admin.RemoveResult{Models: []string{}, DropIns: []string{}, Files: []string{}, Kept: []string{}}
	cfg := d.Config()
	file, cacheName, err := d.resolveRemove(cfg, req.Target)
	if err != nil {
		return res, err
	}
	var users []*config.Model
	for i := range cfg.Models {
		if cfg.Models[i].Path == file {
			users = append(users, &cfg.Models[i])
		}
	}
	dropIns := map[string]bool{}
	for _, m := range users {
		if m.File == cfg.Path || m.File == "" {
			return res, dropin.Errorf(http.StatusConflict, "file_referenced",
				"%s is the file of model %q in the main config file, at %s; remove or change that block yourself (rm removes only models of drop-in files)", file, m.Name, m.DefinedAt)
		}
		dropIns[m.File] = true
	}
	for _, m := range cfg.Models {
		if dropIns[m.File] && m.Path != file {
			return res, dropin.Errorf(http.StatusConflict, "file_referenced",
				"the drop-in %s also defines model %q (at %s), which uses another file; edit the drop-in yourself", m.File, m.Name, m.DefinedAt)
		}
	}
	for _, m := range users {
		if err := d.pool.Unload(ctx, m.Name); err != nil {
			return res, fmt.Errorf("rm %s: %w", req.Target, err)
		}
		res.Models = append(res.Models, m.Name)
	}
	// The drop-ins go, then the reload; a reload that rejects the config
	// without them (a router tier of the main file names the model) puts
	// them back.
	saved := map[string][]byte{}
	for f := range dropIns {
		b, err := os.ReadFile(f)
		if err != nil {
			return res, fmt.Errorf("rm %s: %w", req.Target, err)
		}
		saved[f] = b
	}
	for f := range saved {
		if err := dropin.Remove(f); err != nil {
			d.restoreDropIns(saved)
			return res, err
		}
		res.DropIns = append(res.DropIns, f)
	}
	sort.Strings(res.DropIns)
	if len(saved) > 0 {
		rr := d.Reload(ctx, "rm "+req.Target)
		res.Reload = &rr
		still := ""
		for _, n := range res.Models {
			if _, ok := d.Config().Lookup(n); ok {
				still = n
			}
		}
		if !rr.OK || still != "" {
			d.restoreDropIns(saved)
			msg := rr.Error
			if msg == "" {
				msg = fmt.Sprintf("model %q is still configured", still)
			}
			return res, dropin.Errorf(http.StatusUnprocessableEntity, "config_rejected", "rm %s: the config without %s does not load, so it was put back:\n%s", req.Target, strings.Join(res.DropIns, ", "), msg)
		}
	}
	if cacheName == "" {
		res.Kept = append(res.Kept, file+": outside the model cache, so not the daemon's to delete")
	} else if err := d.removeCached(ctx, cacheName, res.Models); err != nil {
		res.Kept = append(res.Kept, fmt.Sprintf("%s: %v", file, err))
	} else {
		res.Files = append(res.Files, file)
	}
	d.log.Info("model removed", "target", req.Target, "models", strings.Join(res.Models, ","), "drop_ins", strings.Join(res.DropIns, ","), "files", strings.Join(res.Files, ","))
	return res, nil
}

// resolveRemove finds the file rm means: a model's file, a path, or a
// cached file's name. cacheName is the file's name in the model cache,
// "" when it is not there.
func (d *Daemon) resolveRemove(cfg *config.Config, target string) (file, cacheName string, err error) {
	cached := func(path string) string {
		if d.cache == nil {
			return ""
		}
		for _, e := range d.cache.Entries() {
			if e.Path == path && e.Origin != "staged" {
				return e.Name
			}
		}
		return ""
	}
	if m, ok := cfg.Lookup(target); ok {
		return m.Path, cached(m.Path), nil
	}
	if filepath.IsAbs(target) {
		p := filepath.Clean(target)
		if n := cached(p); n != "" {
			return p, n, nil
		}
		for _, m := range cfg.Models {
			if m.Path == p {
				return p, "", nil
			}
		}
		return "", "", dropin.Errorf(http.StatusNotFound, admin.CodeNotFound, "%s is neither in the model cache nor the file of a configured model (jetai-ctl ls lists them)", p)
	}
	if d.cache != nil {
		for _, n := range []string{target, target + ".gguf"} {
			if e, ok := d.cache.Lookup(n); ok && e.Origin != "staged" {
				return e.Path, e.Name, nil
			}
		}
	}
	return "", "", dropin.Errorf(http.StatusNotFound, admin.CodeNotFound, "no model or model file %q (the models are %s; jetai-ctl ls lists the files)", target, strings.Join(cfg.ModelNames(), ", "))
}

// removeCached deletes a file from the model cache, with the parked
// conversations of the models that used it. A runner that has just been
// stopped may hold the file for a moment longer.
func (d *Daemon) removeCached(ctx context.Context, name string, models []string) error {
	for _, m := range models {
		d.cache.DropPark(m)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := d.cache.Remove(name)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *Daemon) restoreDropIns(saved map[string][]byte) {
	for f, b := range saved {
		if _, err := dropin.Write(filepath.Dir(f), strings.TrimSuffix(filepath.Base(f), ".hcl"), b); err != nil {
			d.log.Error("rm: a drop-in could not be put back", "file", f, "err", err)
		}
	}
}

// The admin socket's local-model endpoints (admin.LocalModels).
var _ admin.LocalModels = adminBackend{}

func (b adminBackend) LocalFiles(ctx context.Context) (admin.LocalFiles, error) {
	return b.d.LocalFiles(ctx)
}

func (b adminBackend) RemoveModel(ctx context.Context, req admin.RemoveRequest) (admin.RemoveResult, error) {
	return b.d.RemoveModel(ctx, req)
}
