# jetai build. CGO_OPT is the one knob for the C/C++ flags of the llama.cpp
# build: native for local builds; packaging overrides it per target.
GO       ?= go
CGO_OPT  ?= -O3 -march=native
export CGO_CFLAGS   := $(CGO_OPT)
export CGO_CXXFLAGS := $(CGO_OPT)
export CGO_ENABLED  := 1

# Real-model tests read this; CI fails when it is missing (see .ci/run).
JETAI_TEST_MODEL ?= $(abspath ../shared/models/stories260K.gguf)
export JETAI_TEST_MODEL

BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/jetai/jetai/version.Version=$(VERSION)

.PHONY: build test vet bench run clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

test: vet
	$(GO) test -count=1 -timeout 20m ./...

clean:
	rm -rf $(BIN)

# Speed, side by side with the raw engine (see package bench). Not a test.
bench: build
	$(GO) run ./cmd/jetai-bench -runner $(BIN)/jetaid
