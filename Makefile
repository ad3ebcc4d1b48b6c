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

.PHONY: build test test-portable check vet bench run clean test-browser test-clients

# jetai-ctl links no cgo (a dependency test in cmd/jetai-ctl keeps it so):
# it is built static, the rest with llama.cpp.
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/jetaid ./cmd/jetai-bench ./cmd/jetai-modelgen
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/jetai-ctl ./cmd/jetai-haproxy

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# Tests that skip for want of the real tiny model each write a line to
# TEST_SKIP_LOG (internal/testmodel); `make test` counts them at its end,
# since go test says "ok" for a package whose tests skipped. Under CI=true
# such a test fails instead. PKGS narrows the run: make test PKGS=./config
PKGS          ?= ./...
TEST_SKIP_LOG := $(abspath .cache/test-skips.txt)
test: vet
	@mkdir -p $(dir $(TEST_SKIP_LOG)) && rm -f $(TEST_SKIP_LOG)
	@echo "$(GO) test -count=1 -timeout 20m $(PKGS)"
	@JETAI_TEST_SKIP_LOG=$(TEST_SKIP_LOG) $(GO) test -count=1 -timeout 20m $(PKGS); rc=$$?; \
	n=$$(cut -f1 $(TEST_SKIP_LOG) 2>/dev/null | sort -u | wc -l); \
	if [ "$$n" -gt 0 ]; then \
		echo "make test: $$n real-model tests SKIPPED: $(JETAI_TEST_MODEL) is missing (put stories260K.gguf there or set JETAI_TEST_MODEL; list: $(TEST_SKIP_LOG))"; \
	fi; \
	exit $$rc

# The engine's matrix tests built as the amd64 package is (x86-64-v3: no
# AVX-512, so jetai's AVX2 path and ggml's own K-quant kernels): batch
# invariance must hold there too. amd64 hosts only.
test-portable:
ifeq ($(shell $(GO) env GOARCH),amd64)
	CGO_CFLAGS="$(DEB_CGO_OPT_amd64)" CGO_CXXFLAGS="$(DEB_CGO_OPT_amd64)" $(GO) test -count=1 -run 'TestBatchInvariance|TestKQuant|TestGreedy' ./daemon/engine/
endif

# Every suite: the Go tests, the browser tests and the .deb under a real
# systemd. This is the test command of the README and of .ci/run.
check: test test-portable test-browser test-deb test-helm test-image

clean:
	rm -rf $(BIN)

# Browser tests of the dashboard (/) and the API docs (/docs): bin/jetaid on
# a temporary config with the real tiny model, Debian's chromium (no browser
# download) driven by playwright-core from web/e2e/package-lock.json.
# Screenshots land in ARTIFACTS. The folder's client tests (the official
# openai and ollama clients and the AI SDK against a real jetaid) run too;
# test-clients runs only those, without chromium.
ARTIFACTS ?= $(abspath .cache/artifacts/browser)
CHROMIUM  ?= /usr/bin/chromium
test-browser: build
	@test -x "$(CHROMIUM)" || { echo "test-browser: $(CHROMIUM) is missing (apt-get install chromium)" >&2; exit 1; }
	@command -v npm >/dev/null || { echo "test-browser: npm is missing" >&2; exit 1; }
	cd web/e2e && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; }
	rm -rf "$(ARTIFACTS)" && mkdir -p "$(ARTIFACTS)"
	cd web/e2e && ARTIFACTS="$(ARTIFACTS)" CHROMIUM="$(CHROMIUM)" JETAID="$(abspath $(BIN))/jetaid" \
		node --test --test-concurrency=1 --test-reporter=spec
	@echo "test-browser: screenshots in $(ARTIFACTS)"

CLIENT_TESTS = ollama.test.js openai.test.js
test-clients: build
	@command -v npm >/dev/null || { echo "test-clients: npm is missing" >&2; exit 1; }
	cd web/e2e && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; }
	cd web/e2e && JETAID="$(abspath $(BIN))/jetaid" node --test --test-concurrency=1 --test-reporter=spec $(CLIENT_TESTS)

# Run jetaid in the foreground on a sample config that works on a fresh
# clone: the real tiny model when ../shared/models has it, otherwise a small
# model made by the project's own generator. PORT picks the REST port
# (make run PORT=8080). The admin socket belongs to the caller's group, so
# the caller's jetai-ctl may use it without a jetai group. The config is
# written anew at every start; its drop-in directory $(RUN_DIR)/jetai.d,
# where `jetai-ctl pull|import ... --add NAME` writes, stays between runs.
RUN_DIR := .cache/run
PORT    ?= 8000
RUN_PULL ?= hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M
run: build
	@mkdir -p $(RUN_DIR)/jetai.d .cache/models
	@model="$(JETAI_TEST_MODEL)"; ctl="$(abspath $(BIN))/jetai-ctl --socket $(abspath $(RUN_DIR))/admin.sock"; \
	if [ ! -f "$$model" ]; then \
		echo "make run: no real model at $(JETAI_TEST_MODEL): serving a model made by the project's generator."; \
		echo "make run: its weights are random, so its answers are NOISE. For real answers, once jetaid is up run:"; \
		echo "    $$ctl pull $(RUN_PULL) --add chat"; \
		echo "make run: (or, with a GGUF file you have: $$ctl import FILE --add chat)"; \
		echo "make run: then ask model \"chat\"; it stays in $(RUN_DIR)/jetai.d/ for the next make run."; \
		model="$(abspath .cache/models)/tiny-chatml.gguf"; \
		[ -f "$$model" ] || $(BIN)/jetai-modelgen -preset tiny -chat-template -out "$$model"; \
	fi; \
	group=$$(id -gn 2>/dev/null || id -g); \
	sed "/^#/!{s|@MODEL@|$$model|; s|@RUN@|$(abspath $(RUN_DIR))|; s|@PORT@|$(PORT)|; s|@GROUP@|$$group|}" testdata/jetaid/run.hcl.in > $(RUN_DIR)/jetai.hcl; \
	dropins=$$(cd $(RUN_DIR)/jetai.d && ls *.hcl 2>/dev/null | tr '\n' ' '); \
	[ -z "$$dropins" ] || echo "make run: models added earlier, in $(RUN_DIR)/jetai.d/: $$dropins"; \
	echo "jetaid: http://127.0.0.1:$(PORT) (another port: make run PORT=8080), model $$model, config $(RUN_DIR)/jetai.hcl"; \
	echo "jetai-ctl: $$ctl status"; \
	exec $(BIN)/jetaid --config $(RUN_DIR)/jetai.hcl

# Speed, side by side with the raw engine (see package bench). Not a test.
bench: build
	$(GO) run ./cmd/jetai-bench -runner $(BIN)/jetaid

# Debian packages (nfpm.yaml, packaging/). `make deb ARCH=arm64` is the
# JetPack 6 package, cross-compiled for the Jetson Orin's Cortex-A78AE;
# `make deb ARCH=amd64` targets x86-64-v3 (AVX2/FMA, which llama.cpp's x86
# kernels use). Output: dist/jetai_VERSION_ARCH.deb, version from git.
ARCH ?= amd64
DEB_CGO_OPT_arm64 ?= -mcpu=cortex-a78ae -O3
DEB_CGO_OPT_amd64 ?= -march=x86-64-v3 -O3
.PHONY: deb test-deb
deb:
	ARCH=$(ARCH) DEB_CGO_OPT="$(DEB_CGO_OPT_$(ARCH))" GO=$(GO) packaging/build-deb.sh

# Builds both packages and tests them: the amd64 one installed in a Debian
# root file system under a real systemd, the arm64 one under qemu. Needs
# root, debootstrap, qemu-user-static and the aarch64 cross compilers
# (.ci/run installs them). The root file system is cached in
# $(JETAI_DEB_CACHE).
JETAI_DEB_CACHE ?= /var/cache/jetai-deb-test
export JETAI_DEB_CACHE
test-deb:
	$(MAKE) deb ARCH=amd64
	$(MAKE) deb ARCH=arm64
	packaging/test/deb-systemd.sh

# The OCI image (docs/packaging.md): linux/amd64 and linux/arm64 from the
# .deb builds (made when missing) on minimal Debian root file systems
# (debootstrap, cached in $(JETAI_DEB_CACHE)), assembled without a container
# daemon: dist/jetai-oci (OCI layout) and dist/jetai-image_VERSION_ARCH.tar
# (docker-archive). test-image builds it for this machine from bin/ and runs
# it in a PID and mount namespace chroot (needs root); its module is
# packaging/image (go-containerregistry stays out of the main module).
.PHONY: image test-image
image:
	GO=$(GO) packaging/image/build-image.sh
test-image: build
	rootfs=$$(packaging/image/rootfs.sh $$($(GO) env GOARCH) $(JETAI_DEB_CACHE)) && \
	cd packaging/image && $(GO) vet ./... && \
	JETAI_IMAGE_ROOTFS=$$rootfs JETAI_IMAGE_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 ./...

# The Helm chart (deploy/helm/jetai): rendered for several values sets with
# Helm's own SDK, linted, every object decoded strictly into Kubernetes' API
# types. Its own module keeps Helm and the k8s.io modules out of jetai's.
.PHONY: test-helm
test-helm:
	cd deploy/helm && $(GO) vet ./... && $(GO) test -count=1 ./...

# The CUDA ggml backend (libggml-cuda.so) and its .deb, jetai-cuda, built
# from the module's own ggml sources: ARCH=arm64 for JetPack 6 (sm_87),
# ARCH=amd64 with Debian's nvidia-cuda-toolkit (sm_90). Needs nvcc and
# cmake; fails at once, saying how to get them, without. Cached under
# .cache/cuda; not part of .ci/run. See docs/gpu.md.
.PHONY: cuda-backend
cuda-backend:
	ARCH=$(if $(filter command line environment,$(origin ARCH)),$(ARCH)) GO=$(GO) packaging/cuda/build.sh
