# A config that works on a fresh clone: the real tiny model (stories260K)
# from ../shared/models beside the repository. Paths are relative to this
# file. Run:  make build && bin/jetaid --config testdata/jetaid/jetaid.hcl
server {
  listen = "127.0.0.1:8000"
}

memory {
  budget = "1GiB"
}

model "stories" {
  path     = "../../../shared/models/stories260K.gguf"
  aliases  = ["gpt2", "tiny"]
  context  = 512
  parallel = 2
  threads  = 1
  preload  = true

  sampling {
    temperature = 0.7
    max_tokens  = 64
  }
}
