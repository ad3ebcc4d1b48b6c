// Package bench measures jetai's speed side by side with the raw engine in
// one run: prompt and decode tokens/s of a minimal in-process loop over the
// engine, the same through a runner process (single stream and 1–8
// concurrent streams), and the raw engine's batched decode at the same
// sequence counts. Ratios, not absolute figures, are what it is for: the
// machine is shared and absolute times drift, so each raw figure and its
// runner figure are measured back to back, and the wake-ups per token of
// each side (voluntary context switches, from /proc) say where a gap
// comes from. It also times config hot reloads from the file's save to the
// new config in force (reload.go).
package bench
