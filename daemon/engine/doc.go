// Package engine is jetai's only binding to llama.cpp and the only package
// that uses cgo. It owns model loading, model facts, tokenisation, chat
// formatting, contexts with sequence slots, batches, sampling, embeddings,
// per-sequence KV state files and quantisation.
//
// It builds on github.com/ollama/ollama/llama (v0.6.5), which compiles
// llama.cpp from the module with a plain go build. Where that package lacks a
// llama.cpp function, the prototype is declared in cgo.go and called with the
// raw pointer read from the ollama wrapper (see rawModel and rawContext).
//
// Engine objects are not safe for concurrent use: a Context and the Model it
// was made from are driven by one goroutine (the runner's decode loop). The
// package must not know about HTTP, processes, pools or configuration.
package engine
