// Package pool owns which models are loaded: memory estimates, the global
// and per-model budgets, priorities, eviction, keep-alive, load queues, the
// crash limit and the runner processes themselves (one per loaded model,
// plus the warm spare awaiting the next one, started through Options.StartRunner and driven through the Runner
// interface; runner.Process is the real one). It serves no HTTP; its errors say
// how they reach a client (Code, HTTPStatus, RetryAfter; see errors.go),
// and the REST API and admin socket read them.
//
// # Files
//
//	pool.go       the Pool, its options, status and lifetime (Start, Close)
//	state.go      model states and the one function that changes them
//	admit.go      where every request enters: throttle gate, queue, slot
//	request.go    Complete and Embed, and booking a finished request
//	load.go       loading a model, watching its runner, Load
//	evict.go      eviction planning and draining
//	unload.go     unloading, keep-alive, Unload and Optimize
//	crash.go      the crash limit (ModelFailedError)
//	apply.go      putting a reloaded config in force
//	modelfile.go  model files that are missing or bad (unavailable)
//	runner.go     the Runner seam
//	spare.go      the warm spare runner (memory.warm_spare)
//
// # States
//
// A model is unloaded, loading, ready, unloading, failed or unavailable
// (the State constants; /models shows them). Every change goes through
// one function that checks it against the allowed transitions (state.go).
//
// # Failures
//
// A model file whose GGUF header cannot be read fails its load (a
// LoadFailedError) before a runner starts. A runner that crashes, or fails
// its load, DefaultCrashBurst times within DefaultCrashInterval makes its
// model failed with the cause (crash.go): requests get a ModelFailedError
// at once and no runner starts, until the file or the model's config
// changes, or Load (jetai-ctl load) retries it.
//
// # Memory
//
// Before a load the pool estimates the model's memory from its GGUF header
// (see EstimateParams):
//
//	weights = sum of tensor bytes
//	kv      = cells × layers × (row(K) + row(V))
//	          cells = context × parallel, rounded up to 256 with flash
//	          attention, else to 32 (llama.cpp's padding);
//	          row = KV heads × head size elements of the kv_cache type:
//	          f16 2 bytes each, q8_0 34 bytes per 32, q4_0 18 bytes per 32
//	compute = 4 × vocab × min(512, context × parallel)     (f32 logits of one batch)
//	        + 4 × min(512, context × parallel) × (embedding + feed_forward)
//	                                                       (f32 activations of one batch)
//	runner  = process overhead: DefaultRunnerOverhead (or Options.RunnerOverhead),
//	          raised to the largest overhead any runner has shown
//	          (RSS − weights − kv − compute)
//
// After the load, and again when a request finishes (at most every
// MeasureEvery), the runner's RSS is read; a model's charge against the
// budgets is the larger of its estimate and its peak measured RSS. Loading,
// ready and unloading models are all charged. A load must fit both the
// global memory.budget and the model's own memory_budget, and must leave
// MemAvailable (from /proc/meminfo, where there is one) at or above
// memory.reserve.
//
// # Eviction
//
// A load that does not fit evicts ready models in this order: never a
// pinned one; lowest priority first; among equal priorities an idle model
// (no request running in it) before a busy one; then least recently used.
// The victims are the shortest prefix of that order that makes room.
//
// A busy model is never killed mid-request. When the victims include busy
// models the load waits for them to go idle: they are marked draining (they
// take no new requests; those queue and reload the model later), and the
// wait lasts as long as some request or Load call still waits for the load
// (each bounded by its own context). A busy model whose priority is higher
// than the loading model's is not drained for it. When no set of victims
// can make room (pinned models, loads in progress, busy higher-priority
// models, the model bigger than a budget, or too little MemAvailable) the
// load fails at once with a NoRoomError that names what is in the way —
// never an out-of-memory kill.
//
// # Queues and keep-alive
//
// A request for a model that is not ready (unloaded, loading, unloading or
// with all its slots busy) waits in the model's queue; at most
// server.queue_per_model wait per model and server.queue_total over all
// models, beyond which the request gets a QueueFullError. A request that
// finds its model unloaded starts the load. At most parallel requests run in
// a runner at once, so at most parallel + queue_per_model are in flight per
// model.
//
// An idle model (nothing running or queued) is unloaded keep_alive after its
// last use: at once for 0, never for a negative keep_alive. Pinned models
// are never unloaded by the pool on its own (not by eviction, keep-alive or
// Optimize); an explicit Unload does unload them. Unload waits for running
// requests to finish; if its context ends first the model stays loaded.
package pool
