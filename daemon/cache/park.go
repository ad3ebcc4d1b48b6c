package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jetai/jetai/internal/bytesize"
)

// Manifest describes one model's parked slots. Fingerprint identifies the
// model file and the context settings the state was saved under; state
// saved under another fingerprint is never restored.
type Manifest struct {
	Model       string       `json:"model"`
	Fingerprint string       `json:"fingerprint"`
	Saved       time.Time    `json:"saved"`
	Slots       []ParkedSlot `json:"slots"`
	// KVType is the KV cache type the slots were saved with; "" is f16,
	// llama.cpp's default.
	KVType  string `json:"kv_type,omitempty"`
	modTime time.Time
}

// ParkedSlot is one saved sequence: a state file in the park directory and
// the number of tokens it holds.
type ParkedSlot struct {
	File   string `json:"file"`
	Tokens int    `json:"tokens"`
}

const manifestName = "manifest.json"

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func readManifest(dir string) (Manifest, error) {
	var m Manifest
	p := filepath.Join(dir, manifestName)
	st, err := os.Stat(p)
	if err != nil {
		return m, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", p, err)
	}
	m.modTime = st.ModTime()
	return m, nil
}

// parkKey is the directory name of a model's parked state.
func parkKey(model string) string {
	sum := sha256.Sum256([]byte(model))
	return sanitize(model) + "-" + hex.EncodeToString(sum[:4])
}

// ParkTemp makes an empty directory under tmp/ for a runner to write a
// model's slot state into; CommitPark moves it into place.
func (c *Cache) ParkTemp(model string) (string, error) {
	d, err := os.MkdirTemp(c.tmp, "park-"+parkKey(model)+"-")
	if err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	return d, nil
}

// CommitPark writes m's manifest into dir (from ParkTemp) and makes it the
// model's parked state, replacing what was parked before. When it does not
// fit max_size beside the files loaded models use, it is dropped.
func (c *Cache) CommitPark(dir string, m Manifest) error {
	m.Saved = time.Now().UTC()
	// llama.cpp writes the state files without syncing them; a torn state
	// file after a crash could load as wrong KV values, so sync them first.
	for _, s := range m.Slots {
		if err := syncFile(filepath.Join(dir, s.File)); err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("cache: park %s: %w", m.Model, err)
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	if err := writeSynced(filepath.Join(dir, manifestName), b); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("cache: park %s: %w", m.Model, err)
	}
	size := dirSize(dir)
	key := parkKey(m.Model)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropParkLocked(key)
	if !c.evictLocked(size) {
		os.RemoveAll(dir)
		return fmt.Errorf("%w: parked state of %s (%s) does not fit max_size", ErrNoRoom, m.Model, bytesize.IEC(uint64(size)))
	}
	final := filepath.Join(c.parked, key)
	if err := os.Rename(dir, final); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("cache: park %s: %w", m.Model, err)
	}
	syncDir(c.parked)
	c.parks[key] = &park{key: key, size: size, lastUsed: time.Now()}
	return nil
}

// TakePark returns the directory and manifest of model's parked state when
// it was saved under fingerprint. State saved under another fingerprint
// (another file, other context settings) is removed. The caller restores
// from dir and then calls DropPark.
func (c *Cache) TakePark(model, fingerprint string) (string, Manifest, bool) {
	key := parkKey(model)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parks[key] == nil {
		return "", Manifest{}, false
	}
	dir := filepath.Join(c.parked, key)
	m, err := readManifest(dir)
	if err != nil || m.Fingerprint != fingerprint || m.Model != model {
		c.log.Info("cache: dropping parked state saved under other settings", "model", model)
		c.dropParkLocked(key)
		c.stats.RestoresDropped++
		return "", Manifest{}, false
	}
	return dir, m, true
}

// DropPark removes model's parked state.
func (c *Cache) DropPark(model string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropParkLocked(parkKey(model))
}

func (c *Cache) dropParkLocked(key string) {
	if c.parks[key] != nil || key != "" {
		os.RemoveAll(filepath.Join(c.parked, key))
		delete(c.parks, key)
	}
}

// ParkedBytes returns the bytes of every model's parked state.
func (c *Cache) ParkedBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, p := range c.parks {
		n += p.size
	}
	return n
}
