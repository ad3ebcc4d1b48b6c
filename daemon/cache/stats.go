package cache

// Stats are the cache's figures for metrics: its sizes now, and counters
// since Open.
type Stats struct {
	// MaxBytes is cache.max_size; 0 is no bound.
	MaxBytes int64
	// ModelBytes and ModelFiles are the model files (staged, imported,
	// quantized); ParkedBytes and ParkedModels the parked conversations
	// (one directory per model).
	ModelBytes, ParkedBytes  int64
	ModelFiles, ParkedModels int
	// Stage calls: the copy was there (StageHits, imported files in the
	// cache included), was made now (StageMisses, StagedBytes copied), or
	// failed (the model then loads from its own path). Files left on their
	// own disk are not counted.
	StageHits, StageMisses, StageFailures uint64
	StagedBytes                           uint64
	// Evicted to stay within max_size, least recently used first.
	EvictedModels, EvictedParked uint64
	// Parks: a model's conversations saved at its unload (CountPark).
	Parks, ParkFailures uint64
	// Restores: parked conversations loaded into a new runner
	// (CountRestore); RestoresDropped were saved under other settings and
	// removed unrestored.
	Restores, RestoreFailures, RestoresDropped uint64
}

// Stats returns the cache's figures.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.MaxBytes = c.max
	for _, e := range c.entries {
		s.ModelBytes += e.rec.Size
		s.ModelFiles++
	}
	for _, p := range c.parks {
		s.ParkedBytes += p.size
		s.ParkedModels++
	}
	return s
}

// CountPark records a park of a model's conversations by the pool: saved
// and kept, or not (the runner could not save them, or they did not fit).
func (c *Cache) CountPark(ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok {
		c.stats.Parks++
	} else {
		c.stats.ParkFailures++
	}
}

// CountRestore records a restore of parked conversations by the pool.
func (c *Cache) CountRestore(ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok {
		c.stats.Restores++
	} else {
		c.stats.RestoreFailures++
	}
}
