server {
  listn = "127.0.0.1:8000"
}

gpus {
  enabled = true
}

model "a" {
  path    = "models/small.gguf"
  contxt  = 4096
  sampling {
    temprature = 0.5
  }
}
