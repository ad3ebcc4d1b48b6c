package dropin

import (
	"fmt"
	"net/http"
	"os"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/gguf"
	"github.com/jetai/jetai/internal/bytesize"
)

// Fit is the context and slots chosen for an added model, and why.
type Fit struct {
	Context  int `json:"context"`
	Parallel int `json:"parallel"`
	// MaxTokens is a default generation length below the config's default
	// for a model whose context is shorter than it; 0 otherwise.
	MaxTokens      int           `json:"max_tokens,omitempty"`
	TrainedContext int           `json:"trained_context"`
	Estimate       pool.Estimate `json:"estimate"`
	Budget         uint64        `json:"budget"`
	// Reason says where the context comes from, for the file's comment.
	Reason string `json:"reason"`
	// KVCache, when set, is written as the block's kv_cache.
	KVCache string `json:"kv_cache,omitempty"`
}

// minFitContext is the smallest context FitContext settles for: below it
// a chat model holds hardly a question and its answer.
const minFitContext = 512

// contextStep is what a capped context is rounded down to (llama.cpp pads
// its KV cache to 256 cells with flash attention).
const contextStep = 256

// FitContext chooses the context of a model with hyperparameters p in a
// pool whose budget is budget bytes: the trained context (the GGUF's
// context_length; config.DefaultContext when the header has none), capped
// so that the pool's memory estimate (pool.EstimateParams at
// config.DefaultParallel slots, with the config's default KV cache type
// kvCache and no flash attention, as the written block has it) is within
// the budget. The vision projector mmproj ("" for none) is part of that
// estimate, as the pool charges it once the block is in force. When even
// minFitContext tokens do not fit at that many slots, fewer slots are
// tried, down to one; when nothing fits, the error says how much the
// model needs (code exceeds_budget, 507).
func FitContext(p gguf.Params, budget uint64, kvCache, mmproj string) (Fit, error) {
	trained := int(min(p.ContextLength, 1<<20))
	upper := trained
	if upper <= 0 {
		upper = config.DefaultContext
	}
	f := Fit{TrainedContext: trained, Budget: budget}
	base := config.Model{KVCache: kvCache, Mmproj: mmproj}
	if mmproj != "" {
		// The file's identity keys the pool's cache of projector headers.
		st, err := os.Stat(mmproj)
		if err != nil {
			return f, Errorf(http.StatusUnprocessableEntity, "bad_model_file", "projector %s: %v", mmproj, err)
		}
		base.MmprojFileSize, base.MmprojFileModTime = config.Size(st.Size()), st.ModTime()
	}
	est := func(ctx, par int) pool.Estimate {
		m := base
		m.Context, m.Parallel = ctx, par
		return pool.EstimateParams(p, m, pool.DefaultRunnerOverhead)
	}
	lo := min(upper, minFitContext)
	for par := config.DefaultParallel; par >= 1; par /= 2 {
		if est(lo, par).Total > budget {
			continue
		}
		f.Parallel = par
		if e := est(upper, par); e.Total <= budget {
			f.Context, f.Estimate = upper, e
		} else {
			// The largest multiple of contextStep in [lo, upper) that fits.
			good, bad := lo, upper
			for bad-good > contextStep {
				mid := (good + bad) / 2 / contextStep * contextStep
				if mid <= good {
					break
				}
				if est(mid, par).Total <= budget {
					good = mid
				} else {
					bad = mid
				}
			}
			f.Context, f.Estimate = good, est(good, par)
		}
		break
	}
	if f.Parallel == 0 {
		need := est(lo, 1).Total
		return f, Errorf(http.StatusInsufficientStorage, "exceeds_budget",
			"the model needs about %s at a context of %d tokens in one slot, more than the memory budget (%s); raise memory.budget or use a smaller quantization",
			bytesize.IEC(need), lo, bytesize.IEC(budget))
	}
	switch {
	case trained <= 0:
		f.Reason = fmt.Sprintf("the GGUF states no trained context; %d is the default", f.Context)
	case f.Context == trained:
		f.Reason = fmt.Sprintf("the trained context, %d tokens per slot × %d slots", trained, f.Parallel)
	default:
		f.Reason = fmt.Sprintf("%d tokens per slot × %d slots, capped from the trained %d to fit the memory budget", f.Context, f.Parallel, trained)
	}
	if f.Estimate.Projector > 0 {
		f.Reason += fmt.Sprintf(", beside the projector's %s", bytesize.IEC(f.Estimate.Projector))
	}
	if f.Context < config.DefaultMaxTokens {
		f.MaxTokens = f.Context
	}
	return f, nil
}
