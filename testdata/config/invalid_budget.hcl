memory {
  budget  = "4KiB"
  reserve = "4KiB"
}

model "medium" {
  path          = "models/medium.gguf"
  memory_budget = "1GiB"
}

model "large" {
  path          = "models/large.gguf"
  memory_budget = "1KiB"
}
