module github.com/jetai/jetai

go 1.26.8

require github.com/ollama/ollama v0.6.5
