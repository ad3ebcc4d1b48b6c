package experiment

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"

	"github.com/jetai/jetai/config"
)

// Buckets is how finely the weights split the key space. Each variant owns
// a range of buckets proportional to its weight, in the config's order, so
// a weight change moves only the keys in the buckets that change hands
// (90/10 → 80/20 moves the 10% between the two boundaries, nobody else).
const Buckets = 10000

// Bucket maps (experiment, key) onto [0, Buckets): the first 8 bytes of
// sha256, stable across restarts, versions and machines.
func Bucket(experiment, key string) int {
	h := sha256.Sum256([]byte(experiment + "\x00" + key))
	return int(binary.BigEndian.Uint64(h[:8]) % Buckets)
}

// Variant returns the index of the variant that owns bucket b.
func Variant(e *config.Experiment, b int) int {
	total := 0
	for _, v := range e.Variants {
		total += v.Weight
	}
	if total <= 0 {
		return 0
	}
	acc := 0
	for i, v := range e.Variants {
		acc += v.Weight
		// Variant i owns [floor(Buckets·before/total), floor(Buckets·acc/total)).
		if b < Buckets*acc/total {
			return i
		}
	}
	return len(e.Variants) - 1
}

// Assign returns the variants to try for key, the assigned one first and
// then the others by weight (heaviest first, config order among equals),
// which is where its traffic goes when the assigned one cannot serve. An
// empty key (sticky "none", or no key in the request) is assigned at
// random.
func Assign(e *config.Experiment, key string) []int {
	var b int
	if key == "" {
		var r [8]byte
		rand.Read(r[:])
		b = int(binary.BigEndian.Uint64(r[:]) % Buckets)
	} else {
		b = Bucket(e.Name, key)
	}
	first := Variant(e, b)
	order := []int{first}
	for len(order) < len(e.Variants) {
		best := -1
		for i, v := range e.Variants {
			if contains(order, i) {
				continue
			}
			if best < 0 || v.Weight > e.Variants[best].Weight {
				best = i
			}
		}
		order = append(order, best)
	}
	return order
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
