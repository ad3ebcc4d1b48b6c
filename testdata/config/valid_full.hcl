# Every block and every key, with values other than the defaults.
server {
  listen          = "0.0.0.0:8080"
  admin_socket    = "/run/jetai-test/admin.sock"
  admin_group     = "wheel"
  api_keys        = ["sk-local-1", "sk-local-2"]
  cors_origins    = ["http://localhost:3000", "*"]
  max_body        = "4MiB"
  request_timeout = "90s"
  queue_per_model = 8
  queue_total     = 32
  log_level       = "debug"
}

memory {
  budget   = "1.5GB"
  reserve  = 1048576
  kv_cache = "f16"
}

cache {
  dir      = "cache"
  max_size = "10GiB"
}

thermal {
  zones         = ["cpu-thermal", "gpu-thermal"]
  soft_limit    = 75
  hard_limit    = 87.5
  poll_interval = "500ms"
  hysteresis    = 3
}

router {
  default_model = "chat"

  tier "small" {
    models            = ["tiny"]
    max_prompt_tokens = 512
    max_tokens        = 256
  }
  tier "large" {
    structured = true
  }
}

model "tiny" {
  path            = "models/small.gguf"
  aliases         = ["t", "mini"]
  priority        = 10
  memory_budget   = "512MiB"
  context         = 1024
  parallel        = 2
  threads         = 4
  gpu_layers      = -1
  keep_alive      = "forever"
  preload         = true
  pinned          = true
  flash_attention = true
  kv_cache        = "q8_0"
  cache           = false

  sampling {
    temperature    = 0.2
    top_k          = 20
    top_p          = 0.9
    min_p          = 0
    repeat_penalty = 1.1
    seed           = 42
    max_tokens     = 128
    stop           = ["</s>", "\n\n"]
  }
}

model "big" {
  path       = "models/medium.gguf"
  aliases    = ["chat"]
  priority   = 90
  tier       = "large"
  keep_alive = "0"
}
