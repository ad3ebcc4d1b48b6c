// Package cache owns the NVMe cache directory (config block `cache`): model
// files staged from slow storage, models imported or quantized by jetai-ctl,
// and parked conversations (KV state of a runner's slots saved when its
// model is unloaded or the daemon stops). It decides what is kept, within cache.max_size, and
// what is evicted, least recently used first and never a file that a loaded
// model uses. It knows nothing of llama.cpp: checking a GGUF's layout goes
// through package gguf, and writing KV state is the runner's job.
//
// # Layout
//
//	DIR/models/NAME.gguf       a staged or imported model
//	DIR/models/NAME.gguf.json  its record: source, sizes, sha256 (written last)
//	DIR/parked/KEY/            one model's parked slots: manifest.json + state files
//	DIR/tmp/                   copies in progress; emptied at every Open
//
// # Crash safety
//
// A copy is written under tmp/ (by copy_file_range where the kernel can)
// and renamed into models/ once complete. Its record (NAME.gguf.json) is
// written only after the copy is synced to disk and hashed: at once for
// imports and quantized files, in the background for staged copies, which
// are usable (from the page cache) as soon as they are renamed. Open
// rebuilds the index from the directory: a model file without a record (a
// copy not yet sealed, or a crash between the renames), a record without
// its file or unreadable, a file whose size is not the recorded one and
// everything under tmp/ are removed. So a file the index offers after a
// restart is always a complete copy, on disk; Verify compares a file with
// its recorded sha256.
//
// # Recency
//
// The last use of an entry is the modification time of its record (models)
// or manifest (parked), touched on every use, so LRU order survives a
// restart.
package cache
