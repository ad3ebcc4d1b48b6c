model "a" {
  path    = "models/small.gguf"
  aliases = ["fast", "b"]
}

model "b" {
  path    = "models/small.gguf"
  aliases = ["fast", "auto"]
}

model "a" {
  path = "models/medium.gguf"
}

server {}
server {}
