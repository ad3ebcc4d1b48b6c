package daemon

import (
	"github.com/jetai/jetai/admin"
	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/cache"
	"github.com/jetai/jetai/daemon/ingest"
	"github.com/jetai/jetai/daemon/pool"
	"github.com/jetai/jetai/daemon/runner"
)

// The admin socket speaks package admin's wire types; these functions
// convert the daemon's internal structs to them (and requests back), so an
// internal change does not change the protocol.

func wireModel(m pool.ModelStatus) admin.Model {
	return admin.Model{
		Name: m.Name, Aliases: m.Aliases, State: m.State, Priority: m.Priority, Pinned: m.Pinned, Preload: m.Preload, Tier: m.Tier,
		EstimatedBytes: m.EstimatedBytes, Estimate: wireEstimate(m.Estimate), MeasuredBytes: m.MeasuredBytes,
		ChargedBytes: m.ChargedBytes, BudgetBytes: m.BudgetBytes, LoadProgress: m.LoadProgress, StageProgress: m.StageProgress,
		LastUsed: m.LastUsed, KeepAliveUntil: m.KeepAliveUntil, LoadedAt: m.LoadedAt, KeepAlive: m.KeepAlive,
		Active: m.Active, Queued: m.Queued, Draining: m.Draining, Requests: m.Requests, Failures: m.Failures,
		Rejected: m.Rejected, Tokens: m.Tokens, Loads: m.Loads, Evictions: m.Evictions, LoadSeconds: m.LoadSeconds,
		LastError: m.LastError, Reload: m.Reload, Pid: m.Pid, Info: wireInfo(m.Info), LoadPhases: wirePhases(m.LoadPhases),
		LoadSpare: m.LoadSpare,
	}
}

func wirePhases(ps []runner.Phase) []admin.LoadPhase {
	var out []admin.LoadPhase
	for _, p := range ps {
		out = append(out, admin.LoadPhase{Name: p.Name, Seconds: p.Seconds})
	}
	return out
}

func wireEstimate(e pool.Estimate) admin.MemoryEstimate {
	return admin.MemoryEstimate{Weights: e.Weights, KV: e.KV, KVType: e.KVType, KVPerToken: e.KVPerToken,
		Compute: e.Compute, Draft: e.Draft, Projector: e.Projector, Overhead: e.Overhead, Total: e.Total}
}

func wireInfo(i *runner.ModelInfo) *admin.ModelInfo {
	if i == nil {
		return nil
	}
	return &admin.ModelInfo{
		Path: i.Path, Architecture: i.Architecture, Name: i.Name, Description: i.Description, Parameters: i.Parameters,
		FileType: i.FileType, SizeBytes: i.SizeBytes, FileBytes: i.FileBytes, ContextTrain: i.ContextTrain, Layers: i.Layers,
		Embedding: i.Embedding, Heads: i.Heads, HeadsKV: i.HeadsKV, VocabSize: i.VocabSize, ChatTemplate: i.ChatTemplate,
		ChatSupported: i.ChatSupported,
	}
}

func wirePool(s pool.Status) admin.PoolStatus {
	out := admin.PoolStatus{Budget: s.Budget, Reserve: s.Reserve, Used: s.Used, MemAvailable: s.MemAvailable,
		Loaded: s.Loaded, Loading: s.Loading, Queued: s.Queued, QueueTotal: s.QueueTotal, Models: s.Models}
	if sp := s.Spare; sp != nil {
		out.Spare = &admin.Spare{State: sp.State, Pid: sp.Pid, MeasuredBytes: sp.MeasuredBytes, ChargedBytes: sp.ChargedBytes,
			Starts: sp.Starts, Used: sp.Used, Deaths: sp.Deaths, RetryAt: sp.RetryAt, LastError: sp.LastError}
	}
	return out
}

func wirePerf(p pool.PerfFigures) admin.PerfFigures {
	return admin.PerfFigures{
		Requests: p.Requests, Failures: p.Failures, Rejected: p.Rejected, Tokens: p.Tokens, Loads: p.Loads, Evictions: p.Evictions,
		Outcomes: p.Outcomes, PromptTokens: p.PromptTokens, WindowSeconds: pool.PerfWindow.Seconds(),
		WindowRequests: p.WindowRequests, WindowTokensPerSecond: p.WindowTokensPerSecond,
		TokensPerSecond: admin.Percentiles(p.TokensPerSecond), TimeToFirstTokenMS: admin.Percentiles(p.TimeToFirstTokenMS),
		QueueWaitMS: admin.Percentiles(p.QueueWaitMS), LoadSeconds: admin.Percentiles(p.LoadSeconds),
	}
}

func wireOptimize(r pool.OptimizeReport) admin.OptimizeReport {
	return admin.OptimizeReport{Unloaded: r.Unloaded, Reasons: r.Reasons, FreedBytes: r.FreedBytes}
}

// wirePlan is p on the wire.
func wirePlan(p config.Plan) *admin.Plan {
	changes := func(cs []config.ModelChange) []admin.ModelChange {
		out := make([]admin.ModelChange, len(cs))
		for i, c := range cs {
			out[i] = admin.ModelChange{Name: c.Name, Fields: fields(c.Fields)}
		}
		return out
	}
	return &admin.Plan{
		OldHash: p.OldHash, NewHash: p.NewHash, Added: p.Added, Removed: p.Removed,
		Restarted: changes(p.Restarted), Updated: changes(p.Updated), Unchanged: p.Unchanged,
		Live: fields(p.Live), NeedsProcessRestart: fields(p.NeedsProcessRestart), Summary: p.String(),
	}
}

func fields(fs []config.FieldChange) []admin.FieldChange {
	out := make([]admin.FieldChange, len(fs))
	for i, f := range fs {
		out[i] = admin.FieldChange(f)
	}
	return out
}

func wireCacheFile(e cache.Entry) admin.CacheFile {
	r := e.Record
	return admin.CacheFile{Name: r.Name, Source: r.Source, SourceSize: r.SourceSize, SourceModTime: r.SourceModTime,
		Size: r.Size, SHA256: r.SHA256, Origin: r.Origin, Created: r.Created, CopyMS: r.CopyMS, LastUsed: r.LastUsed,
		Path: e.Path, InUse: e.InUse}
}

func wireFileResult(r ingest.Result) admin.FileResult {
	f := r.Facts
	return admin.FileResult{Entry: wireCacheFile(r.Entry), Block: r.Block, Facts: admin.ModelFacts{
		Path: f.Path, Architecture: f.Architecture, Name: f.Name, FileType: f.FileType, Parameters: f.Parameters,
		FileBytes: f.FileBytes, ContextTrain: f.ContextTrain, Layers: f.Layers, ChatTemplate: f.ChatTemplate,
		Estimate: wireEstimate(f.Estimate), Context: f.Context, Parallel: f.Parallel,
	}}
}

// runnerRequest is an admin completion as the pool takes it.
func runnerRequest(r admin.CompleteRequest) runner.Request {
	msgs := make([]runner.Message, len(r.Messages))
	for i, m := range r.Messages {
		msgs[i] = runner.Message{Role: m.Role, Content: m.Content}
	}
	if len(msgs) == 0 {
		msgs = nil
	}
	return runner.Request{Prompt: r.Prompt, Messages: msgs, Sampling: runner.Sampling(r.Sampling),
		MaxTokens: r.MaxTokens, Stop: r.Stop, IgnoreEOS: r.IgnoreEOS}
}

func wireResult(r runner.Result) admin.CompleteResult {
	return admin.CompleteResult{Text: r.Text, FinishReason: r.FinishReason, Timings: admin.Timings(r.Timings)}
}
