package respcache

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/jetai/jetai/config"
	"github.com/jetai/jetai/daemon/runner"
)

// Key identifies an answer: equal keys mean the same model bytes, adapters,
// template and settings given the same input, so the same output.
type Key [32]byte

func (k Key) String() string { return fmt.Sprintf("%x", k[:8]) }

// keyVersion changes when the key's layout changes, so that a disk tier or
// a future format never mixes answers of two layouts.
const keyVersion = "jetai-respcache-v1"

// modelIgnored are the JSON names of config.Model fields that do not change
// what the model generates for a given runner request: names, scheduling,
// memory accounting and file bookkeeping (the file itself enters the key by
// its sha256, the sampling block through the runner request it was applied
// to, the adapters by their sha256 and scale). Every other field of the
// model block enters the key, so a setting added to config.Model later is
// in the key unless someone lists it here on purpose; a test enumerates the
// struct's fields against this list.
var modelIgnored = map[string]string{
	"name":                 "a name; the key has the file's sha256",
	"path":                 "the file enters by its sha256",
	"aliases":              "names",
	"priority":             "scheduling",
	"memory_budget":        "memory accounting",
	"parallel":             "slot count; each slot has its own context",
	"threads":              "CPU threads; ggml's results do not depend on them",
	"keep_alive":           "scheduling",
	"preload":              "scheduling",
	"pinned":               "scheduling",
	"tier":                 "routing",
	"cache":                "staging in cache.dir; the bytes are the same",
	"sampling":             "applied into the runner request, which is in the key",
	"adapters":             "enter by their sha256 and scale",
	"file_size":            "the file enters by its sha256",
	"file_mod_time":        "the file enters by its sha256",
	"file_error":           "a model with a file error does not answer",
	"cache_responses":      "whether to cache, not what is generated",
	"file":                 "which config file declares the model",
	"defined_at":           "where the config declares the model",
	"mmproj":               "the projector enters by its sha256",
	"mmproj_file_size":     "the projector enters by its sha256",
	"mmproj_file_mod_time": "the projector enters by its sha256",
}

// Adapter is a LoRA adapter as the key sees it.
type Adapter struct {
	SHA256 string  `json:"sha256"`
	Scale  float64 `json:"scale"`
}

// keyInput is everything hashed into a Key.
type keyInput struct {
	Version  string    `json:"v"`
	Model    string    `json:"model_sha256"`
	Adapters []Adapter `json:"adapters"`
	// Projector is the multimodal projector's sha256 ("" without one);
	// the request's images are in Request.
	Projector string         `json:"projector_sha256,omitempty"`
	Settings  map[string]any `json:"settings"`
	Request   runner.Request `json:"request"`
}

// MakeKey builds the key of req for model m whose file has the hex sha256
// modelSHA and whose adapters (in m.Adapters' order) have adapters. The
// runner request goes in whole (prompt or messages, every sampling setting
// after the model's defaults were applied, max tokens, stop strings): the
// runner formats chat messages with the template of the model file (its
// sha256 is in the key) or of the model block (in the key's settings), so
// equal keys give equal formatted prompts.
func MakeKey(m *config.Model, modelSHA string, adapters []Adapter, req runner.Request) (Key, error) {
	return MakeKeyWithProjector(m, modelSHA, adapters, "", req)
}

// MakeKeyWithProjector is MakeKey for a model with a multimodal projector
// whose file has the hex sha256 projectorSHA.
func MakeKeyWithProjector(m *config.Model, modelSHA string, adapters []Adapter, projectorSHA string, req runner.Request) (Key, error) {
	settings, err := modelSettings(m)
	if err != nil {
		return Key{}, err
	}
	b, err := json.Marshal(keyInput{Version: keyVersion, Model: modelSHA, Adapters: adapters, Projector: projectorSHA, Settings: settings, Request: req})
	if err != nil {
		return Key{}, fmt.Errorf("response cache key: %w", err)
	}
	return sha256.Sum256(b), nil
}

// modelSettings is the model block as JSON, less modelIgnored.
func modelSettings(m *config.Model) (map[string]any, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("response cache key: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("response cache key: %w", err)
	}
	for k := range modelIgnored {
		delete(out, k)
	}
	return out, nil
}

// Why a request is not cached; "" when it may be.
const (
	BypassSampled = "sampled without a seed"
)

// Cacheable says whether req's answer is a function of its key: greedy
// decoding (temperature 0), or a fixed seed. A sampled request without a
// seed draws differently every time and is never cached. It returns the
// reason when not.
func Cacheable(req runner.Request) (bool, string) {
	if req.Sampling.Temperature <= 0 || req.Sampling.Seed != nil {
		return true, ""
	}
	return false, BypassSampled
}
