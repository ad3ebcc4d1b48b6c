// Package admin is the admin socket's protocol: a small versioned JSON API
// (HTTP/1.1 over a Unix socket, so `curl --unix-socket` works) with its
// wire types, its server side (Server, over a Backend the daemon
// implements), the socket's creation and access check (mode 0660, group,
// SO_PEERCRED), and its client side (Client, used by jetai-ctl).
//
// It links only the standard library (a test keeps it so): the wire types
// are its own, and the daemon converts its internal structs to them at the
// edge (daemon/admin.go, daemon/wire.go). An internal change therefore
// does not change the protocol, and jetai-ctl stays a small pure-Go binary.
//
// Endpoints, all under /v1 (the API version; a breaking change gets /v2):
//
//	GET  /v1/status                  Status: daemon, config, pool, models, figures, platform
//	GET  /v1/models                  {"models": [Model…]}
//	POST /v1/models/{name}/load      {"wait": true} waits until ready; 202 when not waiting
//	POST /v1/models/{name}/unload    waits for running requests, then unloads
//	POST /v1/optimize                OptimizeReport
//	POST /v1/reload                  ReloadResult; 200 applied, 422 rejected, 409 busy
//	POST /v1/validate                {"path", "content"} → ValidateResult (200 usable, 422 not)
//	GET  /v1/log-level               {"level": "info"}
//	PUT  /v1/log-level               {"level": "debug"}
//	GET  /v1/top?interval=1s         NDJSON stream of Status, one line per interval
//	POST /v1/complete                CompleteRequest → NDJSON CompleteFrames (benchmarks)
//	POST /v1/bench                   BenchRequest → NDJSON BenchFrames (progress, then result); disconnect cancels
//	GET  /v1/cache                   CacheStatus: cached model files, parked bytes, quantize jobs
//	POST /v1/cache/verify            VerifyResult: each cached file hashed against its record
//	POST /v1/import                  {"path", "name"} → NDJSON FileFrames (progress, then result)
//	POST /v1/quantize                {"model", "type", "name"} → NDJSON FileFrames; disconnect cancels
//
// Errors are {"error": {"code", "message"}} with a 4xx/5xx status, and a
// Retry-After header when waiting helps. The code is the error's own where
// it has one (the pool's "thermal_shed", "queue_full", "model_not_found",
// …, the same codes the REST API answers). The package knows nothing of
// how the daemon does any of this: see Backend.
package admin
