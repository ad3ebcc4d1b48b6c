package config

import "github.com/hashicorp/hcl/v2"

// The raw schema as gohcl decodes it. Optional attributes are pointers so
// that "left out" (take the default) differs from "set to the zero value".
// Sizes and durations are kept as expressions and converted by scalarString:
// they may be strings or plain numbers, and cty's own number-to-string
// conversion renders a literal such as 1e99999999 digit by digit.
// Each block keeps its hcl.Body so validation can point at the exact range of
// the attribute it complains about (see valueRange).

type fileSchema struct {
	Server  *serverBlock  `hcl:"server,block"`
	Memory  *memoryBlock  `hcl:"memory,block"`
	Cache   *cacheBlock   `hcl:"cache,block"`
	Thermal *thermalBlock `hcl:"thermal,block"`
	Router  *routerBlock  `hcl:"router,block"`
	GPU     *gpuBlock     `hcl:"gpu,block"`
	Models  []modelBlock  `hcl:"model,block"`
	// Experiments: see experiment.go.
	Experiments []experimentBlock `hcl:"experiment,block"`
	Pull        *pullBlock        `hcl:"pull,block"` // pull.go
}

type serverBlock struct {
	Listen         *string        `hcl:"listen,optional"`
	AdminSocket    *string        `hcl:"admin_socket,optional"`
	AdminGroup     *string        `hcl:"admin_group,optional"`
	APIKeys        *[]string      `hcl:"api_keys,optional"`
	CORSOrigins    *[]string      `hcl:"cors_origins,optional"`
	AllowedHosts   *[]string      `hcl:"allowed_hosts,optional"`
	MaxBody        hcl.Expression `hcl:"max_body,optional"`
	RequestTimeout hcl.Expression `hcl:"request_timeout,optional"`
	QueuePerModel  *int           `hcl:"queue_per_model,optional"`
	QueueTotal     *int           `hcl:"queue_total,optional"`
	MaxConnections *int           `hcl:"max_connections,optional"`
	LogLevel       *string        `hcl:"log_level,optional"`
	AllowPull      *bool          `hcl:"allow_pull,optional"`
	LogFormat      *string        `hcl:"log_format,optional"`
	FetchImages    *bool          `hcl:"fetch_images,optional"`
	MaxImagePixels *int64         `hcl:"max_image_pixels,optional"`
	Body           hcl.Body       `hcl:",body"`
	DefRange       hcl.Range      `hcl:",def_range"`
}

type memoryBlock struct {
	Budget  hcl.Expression `hcl:"budget,optional"`
	Reserve hcl.Expression `hcl:"reserve,optional"`
	KVCache *string        `hcl:"kv_cache,optional"`
	// GPUBudget is the device memory of a discrete GPU (config/gpu.go).
	GPUBudget hcl.Expression `hcl:"gpu_budget,optional"`
	WarmSpare *bool          `hcl:"warm_spare,optional"`
	Body      hcl.Body       `hcl:",body"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type cacheBlock struct {
	Dir     *string        `hcl:"dir,optional"`
	MaxSize hcl.Expression `hcl:"max_size,optional"`
	// The response cache: see responses.go.
	Responses     hcl.Expression `hcl:"responses,optional"`
	ResponseTTL   hcl.Expression `hcl:"response_ttl,optional"`
	ResponsesDisk hcl.Expression `hcl:"responses_disk,optional"`
	Body          hcl.Body       `hcl:",body"`
	DefRange      hcl.Range      `hcl:",def_range"`
}

type thermalBlock struct {
	Zones        *[]string      `hcl:"zones,optional"`
	SoftLimit    *float64       `hcl:"soft_limit,optional"`
	HardLimit    *float64       `hcl:"hard_limit,optional"`
	PollInterval hcl.Expression `hcl:"poll_interval,optional"`
	Hysteresis   *float64       `hcl:"hysteresis,optional"`
	Body         hcl.Body       `hcl:",body"`
	DefRange     hcl.Range      `hcl:",def_range"`
}

type routerBlock struct {
	DefaultModel *string     `hcl:"default_model,optional"`
	Tiers        []tierBlock `hcl:"tier,block"`
	Body         hcl.Body    `hcl:",body"`
	DefRange     hcl.Range   `hcl:",def_range"`
}

type tierBlock struct {
	Name            string    `hcl:"name,label"`
	NameRange       hcl.Range `hcl:"name,label_range"`
	Models          *[]string `hcl:"models,optional"`
	MaxPromptTokens *int      `hcl:"max_prompt_tokens,optional"`
	MaxTokens       *int      `hcl:"max_tokens,optional"`
	Structured      *bool     `hcl:"structured,optional"`
	Body            hcl.Body  `hcl:",body"`
	DefRange        hcl.Range `hcl:",def_range"`
}

type modelBlock struct {
	Name           string            `hcl:"name,label"`
	NameRange      hcl.Range         `hcl:"name,label_range"`
	Path           string            `hcl:"path"`
	Aliases        *[]string         `hcl:"aliases,optional"`
	Priority       *int              `hcl:"priority,optional"`
	MemoryBudget   hcl.Expression    `hcl:"memory_budget,optional"`
	Context        *int              `hcl:"context,optional"`
	Parallel       *int              `hcl:"parallel,optional"`
	Threads        *int              `hcl:"threads,optional"`
	GPULayers      *int              `hcl:"gpu_layers,optional"`
	KeepAlive      hcl.Expression    `hcl:"keep_alive,optional"`
	Preload        *bool             `hcl:"preload,optional"`
	Pinned         *bool             `hcl:"pinned,optional"`
	Tier           *string           `hcl:"tier,optional"`
	FlashAttention *bool             `hcl:"flash_attention,optional"`
	KVCache        *string           `hcl:"kv_cache,optional"`
	Cache          *bool             `hcl:"cache,optional"`
	CacheResponses *bool             `hcl:"cache_responses,optional"`
	Sampling       *samplingBlock    `hcl:"sampling,block"`
	Adapters       []adapterBlock    `hcl:"adapter,block"`
	Speculative    *speculativeBlock `hcl:"speculative,block"`
	Mmproj         *string           `hcl:"mmproj,optional"`
	MmprojOffload  *bool             `hcl:"mmproj_offload,optional"`
	Body           hcl.Body          `hcl:",body"`
	DefRange       hcl.Range         `hcl:",def_range"`
}

type samplingBlock struct {
	Temperature   *float64  `hcl:"temperature,optional"`
	TopK          *int      `hcl:"top_k,optional"`
	TopP          *float64  `hcl:"top_p,optional"`
	MinP          *float64  `hcl:"min_p,optional"`
	RepeatPenalty *float64  `hcl:"repeat_penalty,optional"`
	Seed          *int64    `hcl:"seed,optional"`
	MaxTokens     *int      `hcl:"max_tokens,optional"`
	Stop          *[]string `hcl:"stop,optional"`
	Body          hcl.Body  `hcl:",body"`
	DefRange      hcl.Range `hcl:",def_range"`
}
