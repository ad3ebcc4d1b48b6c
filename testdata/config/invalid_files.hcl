model "missing" {
  path = "models/nope.gguf"
}

model "dir" {
  path = "models/adir"
}

model "text" {
  path = "models/notgguf.bin"
}

model "abs" {
  path = "/nonexistent/jetai/x.gguf"
}
