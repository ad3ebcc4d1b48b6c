package experiment

import (
	"context"
	"sync"
)

// Shadow runs shadow copies detached from the requests they copy, on a
// bounded queue: a copy that finds the queue full is dropped, never
// waited for, so the primary answer is never delayed by it.
type Shadow struct {
	jobs chan func(context.Context)
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// Shadow queue defaults: two copies run at a time, eight wait.
const (
	ShadowWorkers = 2
	ShadowQueue   = 8
)

// NewShadow starts workers that run queued copies.
func NewShadow(workers, queue int) *Shadow {
	ctx, cancel := context.WithCancel(context.Background())
	sh := &Shadow{jobs: make(chan func(context.Context), queue), ctx: ctx, stop: cancel}
	for range workers {
		sh.wg.Add(1)
		go func() {
			defer sh.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case job := <-sh.jobs:
					job(ctx)
				}
			}
		}()
	}
	return sh
}

// Submit queues job; false when the queue is full (the copy is dropped).
func (sh *Shadow) Submit(job func(context.Context)) bool {
	select {
	case sh.jobs <- job:
		return true
	default:
		return false
	}
}

// Close cancels running copies and stops the workers.
func (sh *Shadow) Close() {
	sh.stop()
	sh.wg.Wait()
}
