model "tiny" {
  path = "models/small.gguf"
}
