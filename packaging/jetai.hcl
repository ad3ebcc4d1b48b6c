# /etc/jetai/jetai.hcl — configuration of jetaid.
#
# Every setting below is shown with its default value; a setting you leave out
# takes that default (the defaults live in config/defaults.go). Sizes are
# strings with a unit: "512MiB", "6GiB" (powers of 1024) or "1.5GB" (powers of
# 1000), or a plain number of bytes. Durations are strings: "500ms", "30s",
# "10m", "1h30m". Relative paths resolve against this file's directory.
#
# jetaid watches this file (and takes SIGHUP or `jetai-ctl reload`) and
# applies a change as a diff, without dropping a request: unchanged models
# keep running; a change of threads, priority, keep_alive, pinned, preload,
# aliases, tier, memory_budget or sampling applies to the running model; a
# change of path, context, parallel, gpu_layers, flash_attention, kv_cache,
# cache or an adapter block starts a new runner (the old one serves until the new one is
# ready when memory holds both); new models are added; removed ones finish
# their requests, then unload. server.listen, server.admin_socket,
# server.admin_group and cache.dir take effect only when jetaid restarts;
# every other setting applies at once. A file with errors is rejected as a
# whole (each error names file:line:col) and the running config stays; so
# does a deleted or empty file. A model file that is missing, unreadable or
# not GGUF is only a warning: that model is "unavailable" (HTTP 503) and the
# rest serves. GET /status shows the generation in force and the last
# reload's error.
# Check a file by hand with: jetaid --check-config /etc/jetai/jetai.hcl
#
# Drop-ins: every *.hcl file in /etc/jetai/jetai.d/ (jetai.d beside this
# file) is read after this one, in name order, as part of one config, and
# watched with it. A drop-in holds model blocks only (the blocks below other
# than model belong here); a model name defined twice, in any two files, is
# an error at both places; relative paths in a drop-in resolve against this
# file's directory. `jetai-ctl import FILE --add NAME` (and pull --add)
# writes jetai.d/NAME.hcl; `jetai-ctl rm NAME` removes it with its file.

server {
  # REST API address (host:port), used when systemd does not pass a socket.
  # Under the packaged units jetaid.socket owns the port (file descriptor
  # "api") and this setting is not used: change the port there with
  # `systemctl edit jetaid.socket`.
  # Loopback only by default; set api_keys (and allowed_hosts, below, for
  # clients that use a host name) before opening it to the network.
  listen = "127.0.0.1:8000"

  # Admin socket for jetai-ctl (absolute path), used when systemd does not
  # pass one (jetaid-admin.socket, file descriptor "admin", creates the same
  # path). jetaid creates it with mode 0660 and group admin_group, replacing
  # a stale socket file left by a crash (it dials first: a socket another
  # jetaid still answers on is an error). Whatever the file's mode, jetaid
  # checks each client's credentials (SO_PEERCRED) and refuses everyone but
  # root, its own user and members of admin_group (add one with
  # `usermod -aG jetai NAME`). A group the machine lacks leaves root and
  # jetaid's user only, with a warning in the log.
  admin_socket = "/run/jetai/admin.sock"
  admin_group  = "jetai"

  # Bearer tokens accepted by the REST API ("Authorization: Bearer KEY").
  # Empty: no authentication.
  api_keys = []

  # Web origins whose pages may call the API, for example
  # ["http://localhost:3000"] or ["*"]; they get CORS headers. A request
  # whose Origin header is neither one of these nor jetaid's own origin
  # (the dashboard at http://HOST:PORT/) is refused with 403 before it does
  # anything, so that a web page open in a browser on this machine or the
  # LAN cannot drive the API. Empty: jetaid's own pages only.
  cors_origins = []

  # Host names the API answers to (the Host header), besides loopback
  # (localhost, *.localhost, 127.0.0.0/8, ::1) and this machine's own IP
  # addresses. Any other Host is refused with 403: that stops DNS
  # rebinding, where a hostile page makes its own name point at this
  # machine. A LAN deployment that clients reach by name must list the
  # names here, for example ["jetson.lan", "*.lan"] (a leading "*." covers
  # the subdomains); "*" turns the check off (only behind a proxy that
  # checks Host itself).
  allowed_hosts = []

  # Largest request body accepted; larger ones get 413.
  max_body = "1MiB"

  # Limit for one request, queueing included. "0": no limit.
  request_timeout = "5m"

  # Requests that may wait for one model (loading, or all slots busy) before
  # new ones get 429, and for all models together before new ones get 503.
  # 0: no waiting.
  queue_per_model = 16
  queue_total     = 64

  # REST connections open at once (one file descriptor each; at most half
  # of jetaid's open-file limit). At the cap a new connection closes the one
  # idle longest (no request in progress or arriving, idle for 1 s or
  # more); when none is, it waits up to 1 s, then is answered 503.
  max_connections = 4096

  # debug, info, warn or error. `jetai-ctl log-level debug` changes it until
  # jetaid restarts or this setting changes. Under systemd the log goes to
  # the journal with fields of its own: journalctl -u jetaid MODEL=assistant
  log_level = "info"

  # Let clients of the Ollama-compatible API (/api/) manage models:
  # /api/pull downloads from the Ollama registry into the model cache and
  # adds a drop-in model (jetai.d/NAME.hcl), /api/delete removes one.
  # Both answer 403 while this is false.
  allow_pull = false

  # Off the journal (a container, a terminal): "text" lines or "json" lines
  # (one object per record: time, level, msg and fields), which log
  # collectors read; the container image sets "json". Under systemd the
  # journal gets native entries either way. Takes effect at a restart.
  log_format = "text"

  # Images for vision models (a model block with mmproj). Each image's
  # header is read before it is decoded: more than max_image_pixels
  # (width x height) is refused with 413, so a small file that claims a
  # huge image costs nothing. Images come inline (base64, data: URLs); an
  # http(s) image URL is fetched only with fetch_images = true.
  # max_image_pixels = 16777216
  # fetch_images     = false
}

memory {
  # Memory all loaded models together may use (the larger of the estimate
  # from the GGUF file and the measured size of each runner). A load that does
  # not fit evicts idle, lower-priority models first, never pinned ones.
  budget = "6GiB"

  # MemAvailable to keep free for the system; must be below budget. A load
  # that would go under it evicts first (or fails). When MemAvailable falls
  # under it anyway (or memory pressure, PSI some avg10, reaches 10%), jetaid
  # evicts idle models one per thermal.poll_interval, lowest priority first,
  # before the kernel's OOM killer has to.
  reserve = "512MiB"

  # KV cache type of a model that sets none: "f16", "q8_0" or "q4_0" (see
  # kv_cache in the model block).
  kv_cache = "f16"

  # Keep one runner process started, its engine initialised, for the next
  # model load to take: a swap then skips the process start and the
  # engine's init. It holds about 21 MiB (mostly the binary's pages,
  # shared with jetaid), charged against budget.
  warm_spare = true

  # Device memory of a discrete GPU that models' GPU buffers may hold, as a
  # budget of its own (eviction counts both). Left out: none is enforced. On
  # a Jetson the GPU shares RAM, so its buffers count against budget above.
  # gpu_budget = "16GiB"
}

cache {
  # A directory on fast storage (NVMe). Model files on slower storage are
  # copied here (with their sha256) and loaded from the copy; models from
  # `jetai-ctl import` and `jetai-ctl quantize` are written here; the KV
  # state of an evicted model's conversations is parked here and restored
  # when it loads again. Everything here can be deleted; jetaid rebuilds it.
  dir = "/var/cache/jetai"

  # Cap on the cache directory. The least recently used files go first,
  # never a file that a loaded model uses.
  max_size = "20GiB"

  # The response cache: memory for answers of deterministic requests
  # (temperature 0, or a fixed seed), so that a repeated request is answered
  # in well under a millisecond without running the model. "0" is off;
  # responses = "64MiB" holds about ten thousand answers of a few hundred
  # tokens. A key covers the model file's sha256, its adapters, the prompt or
  # messages and every setting that changes the output; least recently used
  # answers go first. Answers carry X-Jetai-Cache: hit, miss or bypass;
  # requests with Cache-Control: no-cache are generated afresh.
  responses = "0"

  # Drop a cached answer this long after it was stored; "0" keeps it until
  # it is evicted (a changed model file never serves an old answer anyway).
  response_ttl = "0"

  # Also keep answers on disk, in dir/responses, up to this size, so that a
  # restart does not empty the response cache (each file written, synced and
  # renamed into place). "0": memory only. Counted apart from max_size.
  responses_disk = "0"
}

# Where `jetai-ctl pull` downloads models from (into cache.dir). Gated
# repos want a Hugging Face token: HF_TOKEN in jetai-ctl's or jetaid's
# environment, or a file that holds it (readable by user jetai).
# pull {
#   hf_endpoint     = "https://huggingface.co"
#   ollama_registry = "https://registry.ollama.ai"
#   hf_token_file   = "/etc/jetai/hf-token"
# }

gpu {
  # ggml backend libraries (the jetai-cuda package's libggml-cuda.so) each
  # runner loads at start. A library that fails to load is logged with its
  # cause and the runner goes on with the CPU; no directory means CPU only.
  backends_dir = "/usr/lib/jetai/backends"
}

thermal {
  # Thermal zone types to watch (/sys/class/thermal/thermal_zone*/type); the
  # hottest one counts. Zones the machine lacks are skipped; "cpu-thermal"
  # also matches older boards' "CPU-therm". Readings outside -40..150 °C are
  # discarded (Orin's CV zones read -256 °C when off).
  zones = ["cpu-thermal", "gpu-thermal", "tj-thermal"]

  # °C. At soft_limit jetaid throttles: runners get half the CPUs as threads,
  # each model runs half its parallel requests at once, and requests for
  # models below the highest configured priority wait one poll_interval.
  # At hard_limit it sheds: runners get one thread, those lower-priority
  # models get 503 with Retry-After and are unloaded when idle, and nothing
  # is loaded. Each state is left only when the temperature is hysteresis °C
  # below its limit, so it does not flap. soft_limit < hard_limit.
  soft_limit = 80
  hard_limit = 90
  hysteresis = 5

  # How often the zones, memory, GPU and power rails are read. One poll took
  # 49 µs (x86 box) to 368 µs (fake Orin Nano tree), under 0.02% of one core
  # at 2s (docs/benchmarks.md in the source, "Platform monitoring").
  poll_interval = "2s"
}

router {
  # Model used when a request names none. Default: the first model of the
  # first tier, or without tiers the first model block below.
  # default_model = "assistant"

  # Tiers for automatic selection ("auto_select": true, or "model": "auto"),
  # from small to large. A request goes to the first tier whose limits it is
  # within (0 or absent: no limit) and, if it holds code or asks for
  # structured output (JSON schema, grammar), that says structured = true;
  # when none fits, the last tier takes it. Within a tier, a model already
  # loaded is preferred over a swap; otherwise the order below counts.
  # Models join a tier through its models list or their own tier attribute.
  #
  # tier "small" {
  #   models            = ["assistant"]
  #   max_prompt_tokens = 512
  #   max_tokens        = 256
  #   structured        = false
  # }
  # tier "large" {
  #   models     = ["coder"]
  #   structured = true
  # }
}

# One block per model. The label is the name requests use ("model": "...").
model "assistant" {
  # The GGUF file. Required. The package ships no model: until a GGUF file
  # is here jetaid runs anyway, lists this model as "unavailable" and
  # answers requests for it with 503 (model_unavailable). The file is looked
  # for again at every load, so copying it here is enough (no reload).
  path = "/var/lib/jetai/models/model.gguf"

  # Other names for this model in requests. Names and aliases are unique;
  # "auto" is reserved.
  aliases = []

  # 0..100. Higher wins: eviction takes the lowest priority first, then the
  # least recently used.
  priority = 50

  # Cap on this model's memory, within memory.budget. Absent: only the global
  # budget applies.
  # memory_budget = "2GiB"

  # Context of each slot in tokens, and the number of slots (requests decoded
  # together). Memory for the KV cache grows with context × parallel.
  context  = 2048
  parallel = 4

  # CPU threads; 0: all CPUs. A change applies to the running runner (up
  # to the CPU count, or the count it started with if that is more).
  threads = 0

  # Layers offloaded to the GPU. Left out: as many as fit when the runner
  # finds a GPU backend (see the gpu block), none without one. 0 for CPU
  # only, -1 for all layers, or a number of layers.
  # gpu_layers = -1

  # Unload after this long idle. "0": as soon as idle. "forever" (or "-1"):
  # never unload for idleness (eviction can still unload it unless pinned).
  keep_alive = "10m"

  # Load at start; never evict.
  preload = false
  pinned  = false

  # Router tier this model belongs to (a tier named in the router block).
  # tier = "small"

  # llama.cpp flash attention.
  flash_attention = false

  # KV cache element type: "f16" (2 bytes an element), "q8_0" (34 bytes per
  # 32, 53% of f16) or "q4_0" (18 per 32, 28%). The quantized types need
  # flash_attention = true and attention heads a multiple of 32 wide; the
  # memory estimate and the budget count the smaller cache. On a CUDA GPU
  # they are fast only for heads 128 wide. Absent: memory.kv_cache.
  # kv_cache = "q8_0"

  # Use the cache directory: stage this model's file there (when it lives on
  # another disk) and park its conversations there when it is unloaded.
  cache = true

  # Let the response cache keep this model's answers (when cache.responses
  # is on); false for a model whose answers must always be generated.
  cache_responses = true

  # LoRA adapters (GGUF, made for this model's base by llama.cpp's
  # convert_lora_to_gguf.py), applied in order. A model block with adapters is
  # served as its own model: give the base model its own block (same path,
  # no adapter) to serve both. Changing adapters restarts the model. A
  # missing adapter file makes the model unavailable, as a missing path does.
  # adapter {
  #   path  = "/var/lib/jetai/models/assistant-lora.gguf"
  #   scale = 1.0 # -10..10; 1 applies the adapter as trained
  # }

  # A vision model: the multimodal projector (the mmproj-*.gguf beside a
  # LLaVA-style model; `jetai-ctl pull --add` writes it when the repo has
  # one). Its output width must be the model's embedding length. It runs
  # on the CPU unless mmproj_offload = true (on a Jetson the GPU copy is
  # what runs out of memory). Its memory is charged to the model.
  # mmproj         = "/var/lib/jetai/models/mmproj-model-f16.gguf"
  # mmproj_offload = false

  # Speculative decoding: proposed tokens are verified with the request's own
  # sampler, so output is the same with it on or off; only speed differs.
  # ngram drafts from the request's own prompt and output (no memory);
  # draft names a smaller model block (or a GGUF path) with the same
  # vocabulary, loaded in this model's runner and charged to its memory.
  # max_draft (0..32) bounds the tokens drafted per request and step; each
  # request adapts below it. A new draft restarts the model on reload;
  # ngram and max_draft apply in place. Requests opt out with
  # "speculative": false.
  # speculative {
  #   ngram     = true
  #   draft     = "small-draft"
  #   max_draft = 8
  # }

  # Defaults for requests that do not set them.
  sampling {
    temperature    = 0.8  # 0: greedy
    top_k          = 40   # 0: off
    top_p          = 0.95 # 1: off
    min_p          = 0.05 # 0: off
    repeat_penalty = 1.0  # 1: off
    seed           = -1   # -1: random per request
    max_tokens     = 256  # at most context
    stop           = []
  }
}

# An experiment is a model name of its own whose traffic is split among
# existing models by weight, to compare them on this device's real traffic
# (`jetai-ctl experiments NAME` tells whether a difference is real). sticky
# keeps a client on one variant: "user" (the request's user field),
# "header:X-Jetai-Session" (a header), or "none" (per request). mode =
# "shadow" answers from the first variant and sends the others a copy whose
# answer is discarded. Variants name model blocks; weights are relative.
# experiment "assistant-ab" {
#   sticky = "user"
#   mode   = "split"
#   variant "a" {
#     model  = "assistant"
#     weight = 90
#   }
#   variant "b" {
#     model  = "assistant-q8"
#     weight = 10
#   }
# }
