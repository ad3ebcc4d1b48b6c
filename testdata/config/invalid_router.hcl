router {
  default_model = "gpt4"

  tier "small" {
    models            = ["a", "ghost"]
    max_prompt_tokens = 1024
  }
  tier "medium" {
    max_prompt_tokens = 512
  }
  tier "small" {
    models = ["a"]
  }
}

model "a" {
  path = "models/small.gguf"
  tier = "huge"
}
