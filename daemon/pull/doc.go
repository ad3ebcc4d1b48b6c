// Package pull downloads models for `jetai-ctl pull`: it parses a source
// (a Hugging Face repo, quant or file; an Ollama registry name), resolves
// it to files with their sizes and sha256 (the Hub's tree listing and LFS
// object ids, the registry's manifest digests), and downloads them into
// the model cache: free space checked before any byte, a partial file with
// a sidecar that survives a restart, HTTP Range resume after a cut with
// bounded retries, the sha256 verified while the bytes arrive, then fsync,
// rename and a cache record. Two pulls of one file share one download.
//
// It owns DIR/downloads/ of the cache directory and nothing else on disk;
// the cache (package cache) owns DIR/models/ and decides what fits. It
// does not touch the config: writing a drop-in for `--add` is the
// daemon's.
package pull
