server {
  queue_total = "many"
  api_keys    = "sk-1"
}

model "a" {
  path     = "models/small.gguf"
  context  = "big"
  pinned   = "yes"
  aliases  = [1, ["x"]]
}
