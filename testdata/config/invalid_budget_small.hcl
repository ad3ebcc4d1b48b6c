memory {
  budget  = "4000"
  reserve = "0"
}

model "medium" {
  path = "models/medium.gguf"
}

model "large" {
  path = "models/large.gguf"
}
