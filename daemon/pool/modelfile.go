package pool

import (
	"errors"
	"fmt"
	"io/fs"
	"reflect"

	"github.com/jetai/jetai/config"
)

// A model whose file is missing, unreadable or not GGUF is unavailable
// (stUnavailable): the config check only warns about such a file (a disk
// mounted after jetaid, a model still to be copied), so the daemon and the
// other models serve on. The file is checked again at every load: a request
// or Load for the model starts one, which fails at once with an
// UnavailableError while the file is bad (no runner starts, nothing is
// evicted for it) and loads the model once a good file is there.

// UnavailableError is a model whose file cannot be loaded. The API answers
// it with 503 and the message, which names the file and what to do.
type UnavailableError struct {
	Model string            `json:"model"`
	File  *config.FileError `json:"-"`
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("model %q is unavailable: %v; %s", e.Model, e.File, e.File.Hint())
}

func (e *UnavailableError) Unwrap() error { return e.File }

// checkFile checks mc's file, and its adapters' files, as the config
// check does, and returns the model file's information; the error is an
// *UnavailableError.
func checkFile(mc config.Model) (fs.FileInfo, error) {
	unavailable := func(path string, adapter bool, err error) error {
		var fe *config.FileError
		if !errors.As(err, &fe) {
			fe = &config.FileError{Path: path, Problem: config.FileUnreadable, Err: err}
		}
		fe.Adapter = adapter
		return &UnavailableError{Model: mc.Name, File: fe}
	}
	fi, err := config.CheckModelFile(mc.Path)
	if err != nil {
		return nil, unavailable(mc.Path, false, err)
	}
	for _, a := range mc.Adapters {
		if _, err := config.CheckModelFile(a.Path); err != nil {
			return nil, unavailable(a.Path, true, err)
		}
	}
	return fi, nil
}

// setUnavailableLocked records that m's file cannot be loaded. It logs and
// books an event only when the reason is new, so that requests for a model
// whose file is still missing do not fill the log.
func (p *Pool) setUnavailableLocked(m *model, err *UnavailableError, quiet bool) {
	p.setStateLocked(m, stUnavailable)
	m.lastError = err.Error()
	if m.unavailable == m.lastError {
		return
	}
	m.unavailable = m.lastError
	if !quiet {
		p.eventLocked(Event{Kind: EventLoadFailed, Model: m.cfg.Name, Detail: m.lastError})
		p.log.Warn("model unavailable", "model", m.cfg.Name, "err", err)
	}
}

// refreshFile checks m's file before a load, outside p.mu: an unusable
// file fails the load with an UnavailableError. A file other than the one
// the config read (it appeared or was replaced since) has its GGUF header
// read again, so the estimate is the real model's; until a reload records
// the file in the config that happens at every load, which is cheap beside
// the load.
func (p *Pool) refreshFile(m *model) (fs.FileInfo, error) {
	p.mu.Lock()
	mc, estErr := m.cfg, m.estErr
	p.mu.Unlock()
	fi, err := checkFile(mc)
	if err != nil {
		return nil, err
	}
	if estErr == nil && config.Size(fi.Size()) == mc.FileSize && fi.ModTime().Equal(mc.FileModTime) {
		return fi, nil
	}
	mc.FileSize = config.Size(fi.Size())
	params, perr := estimateFile(mc)
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.cfg.Path == mc.Path {
		m.params, m.estErr = params, perr
	}
	if perr != nil {
		p.warnHeader(mc.Name, perr)
	}
	return fi, nil
}

// runsAlready says whether m's running runner already runs want, a
// restart's config: m is ready and no restart is pending, the file it
// loaded is the one want records, and every other setting is equal. That
// is a model loaded from a file that appeared (or changed) after its
// config was read, whose next reload records the file: no reason to
// restart it. (With other changes besides, the restart goes ahead.)
func runsAlready(m *model, want config.Model) bool {
	if m.state != stReady || m.rl.next != nil || len(m.rl.old) > 0 || want.FileError != "" ||
		m.loadedSize != want.FileSize || !m.loadedMod.Equal(want.FileModTime) {
		return false
	}
	cur := m.cfg
	cur.FileSize, cur.FileModTime, cur.FileError = want.FileSize, want.FileModTime, want.FileError
	cur.File, cur.DefinedAt = want.File, want.DefinedAt // where the block is says nothing of the runner
	return reflect.DeepEqual(cur, want)
}
