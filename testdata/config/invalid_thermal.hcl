thermal {
  zones      = ["cpu-thermal", ""]
  soft_limit = 95
  hard_limit = 90
  hysteresis = -1
}

model "a" {
  path = "models/small.gguf"
}
