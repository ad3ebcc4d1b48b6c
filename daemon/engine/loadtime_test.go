package engine

import (
	"context"
	"testing"
	"time"

	"github.com/jetai/jetai/internal/testmodel"
)

func TestSplitLoadTime(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(100, 0).Add(time.Duration(ms) * time.Millisecond) }
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	for _, c := range []struct {
		name                    string
		tensors, step           time.Time
		metadata, mmap, weights time.Duration
	}{
		{"both seen", at(30), at(80), ms(30), ms(50), ms(20)},
		{"no log line", time.Time{}, at(80), ms(80), 0, ms(20)},
		{"no progress", at(30), time.Time{}, ms(30), ms(70), 0},
		{"neither", time.Time{}, time.Time{}, ms(100), 0, 0},
		{"line after the step", at(90), at(80), ms(80), 0, ms(20)},
		{"step from another load", at(30), at(-5), ms(30), ms(70), 0},
	} {
		md, mm, w := split(at(0), c.tensors, c.step, at(100))
		if md != c.metadata || mm != c.mmap || w != c.weights {
			t.Errorf("%s: %v %v %v, want %v %v %v", c.name, md, mm, w, c.metadata, c.mmap, c.weights)
		}
	}
}

// TestLoadTimings: a real load sees llama.cpp's load_tensors line and its
// progress steps, so metadata and the mapping are told apart, and the
// steps add up to no more than the whole Load.
func TestLoadTimings(t *testing.T) {
	path := testmodel.Path(t)
	begin := time.Now()
	m, err := Load(context.Background(), path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	defer m.Close()
	lt := m.Timings()
	if lt.Metadata <= 0 || lt.Mmap <= 0 {
		t.Errorf("metadata %v, mmap %v: llama.cpp's boundaries not seen", lt.Metadata, lt.Mmap)
	}
	if sum := lt.Check + lt.Metadata + lt.Mmap + lt.Weights + lt.Info; sum > took {
		t.Errorf("steps add up to %v of a %v load: %+v", sum, took, lt)
	}
}

// TestLoadCancelledThenTimed: a load cancelled at its first progress step
// fails with the context's error, and the next load's steps are timed as
// its own (the clock is not left running by the cancelled one).
func TestLoadCancelledThenTimed(t *testing.T) {
	path := testmodel.Path(t)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Load(ctx, path, LoadOptions{Progress: func(float32) { cancel() }})
	if err == nil || ctx.Err() == nil {
		t.Fatalf("a load cancelled at its first step: %v", err)
	}
	begin := time.Now()
	m, err := Load(context.Background(), path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	took := time.Since(begin)
	lt := m.Timings()
	if lt.Mmap <= 0 || lt.Metadata+lt.Mmap+lt.Weights > took {
		t.Errorf("timings after a cancelled load: %+v of %v", lt, took)
	}
}
