// Package serve is the runner process (`jetaid runner …`): it loads one
// model with the engine, reports progress to its parent, and serves
// completions and embeddings over the Unix socket it was handed, batching
// every active request into one decode loop (continuous batching over
// sequence slots, with prefix reuse).
//
// It owns nothing but its one model; budgets, queues across models and
// process supervision belong to the daemon (packages runner and pool).
package serve
