server {
  listen = "127.0.0.1:8000
}

model "a" {
  path = models/small.gguf"
}
