// Package api owns jetaid's REST surface: the seed system's endpoints
// (/health, /status, /models, /load_model, /unload_model, /inference,
// /batch_inference, /performance, /optimize), the OpenAI-compatible ones
// under /v1, the Ollama-compatible ones under /api (errors in Ollama's
// shape there) and llama-server's utility endpoints (/tokenize,
// /detokenize, /apply-template, /props). It decodes and validates requests, chooses a model (manual,
// automatic or hybrid selection), fills in each model's configured sampling
// defaults, maps the request onto the pool, and renders answers, streams
// (Server-Sent Events) and errors (always a JSON body).
//
// It also owns the HTTP concerns around them: the guard against hostile web
// pages (Host, Origin and Content-Type checks, CORS), API keys, the
// body-size limit, the request timeout and panic recovery; the listener
// wrapper that turns net/http's own plain-text refusals into JSON errors;
// and the API's description,
// openapi.json (served at /openapi.json, kept true by this package's tests).
// It routes the pages of package web (/, /dashboard, /docs, /ui/), which
// need no API key.
//
// It must not manage processes or memory: loading, queueing, eviction and
// the runners belong to package pool, which this package only calls.
package api
