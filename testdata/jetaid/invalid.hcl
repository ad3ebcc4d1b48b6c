server {
  listen = 8000
}

model "missing" {
  path    = "no-such-model.gguf"
  context = -1
}
