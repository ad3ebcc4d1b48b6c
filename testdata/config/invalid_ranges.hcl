model "a" {
  path       = "models/small.gguf"
  context    = 0
  parallel   = -2
  priority   = 101
  threads    = -1
  gpu_layers = -5

  sampling {
    temperature    = -1
    top_p          = 1.5
    min_p          = 2
    repeat_penalty = 0
    seed           = -7
    max_tokens     = 0
    stop           = ["ok", ""]
  }
}

model "b" {
  path    = "models/small.gguf"
  context = 100
}
