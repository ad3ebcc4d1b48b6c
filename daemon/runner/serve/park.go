package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jetai/jetai/daemon/runner"
	"github.com/jetai/jetai/gguf"
)

// park saves the KV state of the most recently used idle slots into dir.
// It runs on the loop goroutine (between decode steps).
func (s *scheduler) park(req runner.ParkRequest) (runner.ParkResult, error) {
	var res runner.ParkResult
	var cands []*slot
	for _, sl := range s.slots {
		// A cache with images parks like text: the state file keeps the
		// image rows beside the KV (engine/state.go).
		if sl.job == nil && len(sl.cache) > 0 && len(sl.cache) >= req.MinTokens {
			cands = append(cands, sl)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].lastUsed.After(cands[j].lastUsed) })
	if req.MaxSlots > 0 && len(cands) > req.MaxSlots {
		cands = cands[:req.MaxSlots]
	}
	var errs []error
	for _, sl := range cands {
		name := fmt.Sprintf("slot-%d.state", sl.seq)
		path := filepath.Join(req.Dir, name)
		if err := s.lctx.SaveSequence(path, sl.seq, sl.cache); err != nil {
			os.Remove(path)
			errs = append(errs, err)
			continue
		}
		if st, err := os.Stat(path); err == nil {
			res.Bytes += st.Size()
		}
		res.Slots = append(res.Slots, runner.ParkedSlot{File: name, Tokens: len(sl.cache)})
	}
	if len(res.Slots) == 0 && len(errs) > 0 {
		return res, errors.Join(errs...)
	}
	return res, nil
}

// restore loads state files into free, empty slots. A file that does not
// load is skipped: a parked conversation is an optimisation, never a
// reason to fail.
func (s *scheduler) restore(req runner.RestoreRequest) runner.RestoreResult {
	var res runner.RestoreResult
	if saved, own := kvTypeName(req.KVType), kvTypeName(s.lctx.Options().KVType); saved != own {
		for _, f := range req.Files {
			res.Failed = append(res.Failed, fmt.Sprintf("%s: saved with a %s KV cache; this runner's is %s", f, saved, own))
		}
		return res
	}
	for _, f := range req.Files {
		var free *slot
		for _, sl := range s.slots {
			if sl.job == nil && len(sl.cache) == 0 {
				free = sl
				break
			}
		}
		if free == nil {
			res.Failed = append(res.Failed, f+": no free slot")
			continue
		}
		toks, err := s.lctx.LoadSequence(filepath.Join(req.Dir, f), free.seq)
		if err == nil && len(toks) >= s.slotCtx {
			s.lctx.RemoveFrom(free.seq, 0)
			err = fmt.Errorf("%d tokens do not fit the slot context %d", len(toks), s.slotCtx)
		}
		if err != nil {
			res.Failed = append(res.Failed, f+": "+err.Error())
			continue
		}
		free.cache = toks
		free.lastUsed = time.Now()
		res.Restored++
		res.Tokens += len(toks)
	}
	return res
}

// kvTypeName is a KV cache type's name; "" is f16, llama.cpp's default.
func kvTypeName(t string) string {
	if t == "" {
		return gguf.KVCacheF16
	}
	return t
}

func validDir(dir string) error {
	if dir == "" || !filepath.IsAbs(dir) {
		return errors.New("dir must be an absolute path")
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

func (h *handler) park(w http.ResponseWriter, r *http.Request) {
	var req runner.ParkRequest
	if !decode(w, r, &req) {
		return
	}
	if err := validDir(req.Dir); err != nil {
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, "park: "+err.Error())
		return
	}
	var res runner.ParkResult
	var perr error
	if err := h.sched.do(func() { res, perr = h.sched.park(req) }); err != nil {
		writeError(w, http.StatusServiceUnavailable, runner.CodeStopping, err.Error())
		return
	}
	if perr != nil {
		writeError(w, http.StatusInternalServerError, runner.CodeInvalid, "park: "+perr.Error())
		return
	}
	writeJSON(w, res)
}

func (h *handler) restore(w http.ResponseWriter, r *http.Request) {
	var req runner.RestoreRequest
	if !decode(w, r, &req) {
		return
	}
	if err := validDir(req.Dir); err != nil {
		writeError(w, http.StatusBadRequest, runner.CodeInvalid, "restore: "+err.Error())
		return
	}
	for _, f := range req.Files {
		if f == "" || strings.ContainsRune(f, '/') || f == ".." {
			writeError(w, http.StatusBadRequest, runner.CodeInvalid, fmt.Sprintf("restore: %q is not a file name", f))
			return
		}
	}
	var res runner.RestoreResult
	if err := h.sched.do(func() { res = h.sched.restore(req) }); err != nil {
		writeError(w, http.StatusServiceUnavailable, runner.CodeStopping, err.Error())
		return
	}
	writeJSON(w, res)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
