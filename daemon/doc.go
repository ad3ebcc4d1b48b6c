// Package daemon is jetaid's top level: it loads the config, builds the
// model pool and the REST API over it, serves until its context ends, and
// then shuts down in order (stop accepting, let in-flight requests finish
// up to a deadline, stop the runners).
//
// It wires the parts together and owns their lifetimes; it holds no policy
// of its own (that is config, pool and api), and it does not touch
// llama.cpp (runners do).
package daemon
