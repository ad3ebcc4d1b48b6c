#!/bin/sh
# check.sh — the GPU machine's check of the CUDA backend, within 10 minutes.
#
#   packaging/cuda/check.sh [BACKENDS_DIR]
#
# BACKENDS_DIR holds a carried libggml-cuda.so (+ libggml-base.so); without
# it, `make cuda-backend` builds one (needs nvcc; cached in .cache/cuda).
# Then, with one jetaid serving the same generated 0.8B Q4_K_M file as two
# models, "gpu" (gpu_layers = -1) and "cpu" (gpu_layers = 0), it checks and
# prints:
#   1. the backend loaded and llama.cpp offloaded every layer (the runner's
#      own report: gpu_layers == layers_offloadable, gpu_bytes > 0);
#   2. greedy output of GPU against CPU: the common prefix (float sums in
#      another order may diverge later), GPU text non-empty;
#   3. decode tok/s (one request) and aggregate tok/s (PAR at once), GPU
#      against CPU, in this run;
#   4. memory: the GPU bytes jetai charged against the device memory that
#      nvidia-smi shows used by the runner.
# Exit status 1 on a failed assertion. Needs go, python3, curl, nvidia-smi.
set -eu
cd "$(dirname "$0")/../.."
export CGO_CFLAGS="${CGO_CFLAGS:--O3 -march=native}" CGO_CXXFLAGS="${CGO_CXXFLAGS:--O3 -march=native}" CGO_ENABLED=1
GO=${GO:-go}
PAR=${PAR:-8}
TOKENS=${TOKENS:-128}
work=$(mktemp -d /tmp/jetai-cuda-check.XXXXXX)
fail() { echo "FAIL: $*" >&2; exit 1; }
t0=$(date +%s)
step() { echo "== [$(($(date +%s) - t0))s] $*" >&2; }

backends=${1:-}
if [ -z "$backends" ]; then
	step "make cuda-backend"
	DEB=0 packaging/cuda/build.sh >&2
	backends=$(ls -d .cache/cuda/*-sm* | head -1)
fi
[ -f "$backends/libggml-cuda.so" ] || fail "no libggml-cuda.so in $backends"
backends=$(cd "$backends" && pwd)

step "build jetaid, jetai-ctl, jetai-modelgen"
mkdir -p bin
$GO build -o bin/jetaid ./cmd/jetaid
CGO_ENABLED=0 $GO build -o bin/jetai-ctl ./cmd/jetai-ctl
$GO build -o bin/jetai-modelgen ./cmd/jetai-modelgen

model=.cache/models/gen-0.8b-q4_k_m.gguf
mkdir -p .cache/models
if [ ! -f "$model" ]; then
	step "generate the 0.8B model and quantize it to Q4_K_M"
	[ -f .cache/models/gen-0.8b-f16.gguf ] || bin/jetai-modelgen -preset 0.8b -out .cache/models/gen-0.8b-f16.gguf
	cat >"$work/q.hcl" <<HCL
server {
  listen       = "127.0.0.1:18181"
  admin_socket = "$work/q.sock"
}
cache {
  dir = "$work/qcache"
}
model "f16" {
  path       = "$(pwd)/.cache/models/gen-0.8b-f16.gguf"
  gpu_layers = 0
}
HCL
	bin/jetaid --config "$work/q.hcl" >"$work/q.log" 2>&1 &
	qpid=$!
	for _ in $(seq 100); do curl -sf http://127.0.0.1:18181/health >/dev/null && break; sleep 0.2; done
	out=$(bin/jetai-ctl --socket "$work/q.sock" --timeout 10m quantize -type q4_k_m f16)
	kill "$qpid"; wait "$qpid" || true
	q=$(echo "$out" | grep -o '/[^ "]*\.gguf' | head -1)
	[ -f "$q" ] || fail "quantize printed no file: $out"
	cp "$q" "$model"
fi

cat >"$work/jetai.hcl" <<HCL
server {
  listen       = "127.0.0.1:18182"
  admin_socket = "$work/admin.sock"
}
memory {
  budget = "64GiB"
}
cache {
  dir = "$work/cache"
}
gpu {
  backends_dir = "$backends"
}
model "gpu" {
  path       = "$(pwd)/$model"
  gpu_layers = -1
  parallel   = $PAR
  context    = 1024
}
model "cpu" {
  path       = "$(pwd)/$model"
  gpu_layers = 0
  parallel   = $PAR
  context    = 1024
}
HCL
used0=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
step "start jetaid (GPU memory used before: $used0 MiB)"
bin/jetaid --config "$work/jetai.hcl" >"$work/jetaid.log" 2>&1 &
dpid=$!
trap 'kill $dpid 2>/dev/null; wait $dpid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:18182/health >/dev/null && break; sleep 0.2; done
base=http://127.0.0.1:18182
curl -sf -XPOST $base/load_model -d '{"model_name":"gpu"}' >/dev/null || { tail -30 "$work/jetaid.log" >&2; fail "the gpu model did not load"; }
curl -sf -XPOST $base/load_model -d '{"model_name":"cpu"}' >/dev/null || fail "the cpu model did not load"
used1=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)

step "1. offload, from the runner's report"
curl -sf $base/models >"$work/models.json"
curl -sf $base/status >"$work/status.json"
python3 - "$work/models.json" "$work/status.json" "$used0" "$used1" <<'PY' || fail "offload check"
import json, sys
ms = {m["name"]: m for m in json.load(open(sys.argv[1]))["models"]}
st = json.load(open(sys.argv[2]))
g, c = ms["gpu"]["info"], ms["cpu"]["info"]
print("devices:", [(d["name"], d["type"], d["free_bytes"] >> 20, d["total_bytes"] >> 20) for d in st["platform"]["devices"]])
print("backend warnings:", g.get("backend_warnings"))
print(f"gpu: offloaded {g['gpu_layers']}/{g.get('layers_offloadable')} layers, GPU buffers {g['gpu_bytes'] >> 20} MiB; cpu: {c['gpu_layers']} layers, {c['gpu_bytes'] >> 20} MiB")
assert any(d["type"] == "gpu" for d in st["platform"]["devices"]), "no GPU device"
assert g["gpu_layers"] > 0 and g["gpu_layers"] == g["layers_offloadable"], "not every layer offloaded"
assert c["gpu_layers"] == 0, "the cpu model offloaded"
used = (int(sys.argv[4]) - int(sys.argv[3])) << 20
charged = ms["gpu"].get("gpu_charged_bytes", 0) + ms["gpu"].get("gpu_share_bytes", 0)
print(f"4. memory: charged {charged >> 20} MiB (gpu_bytes {g['gpu_bytes'] >> 20} MiB) vs nvidia-smi used +{used >> 20} MiB (CUDA context included)")
assert charged > 0 and charged <= used, "charged GPU memory is 0 or more than the device shows used"
PY

step "2. greedy output, GPU vs CPU"
for m in gpu cpu; do
	curl -sf $base/v1/completions -H 'content-type: application/json' \
		-d "{\"model\":\"$m\",\"prompt\":\"Once upon a time\",\"max_tokens\":48,\"temperature\":0}" >"$work/greedy-$m.json"
done
python3 - "$work/greedy-gpu.json" "$work/greedy-cpu.json" <<'PY' || fail "greedy"
import json, sys
g = json.load(open(sys.argv[1]))["choices"][0]["text"]
c = json.load(open(sys.argv[2]))["choices"][0]["text"]
n = 0
while n < min(len(g), len(c)) and g[n] == c[n]:
    n += 1
print(f"common prefix {n} of {len(c)} characters\n gpu: {g[:120]!r}\n cpu: {c[:120]!r}")
assert g, "GPU gave no text"
PY

step "3. decode and aggregate tok/s, GPU vs CPU ($PAR at once, $TOKENS tokens each)"
python3 - "$base" "$PAR" "$TOKENS" <<'PY' || fail "speed"
import json, sys, time, urllib.request, concurrent.futures as cf
base, par, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def one(model, i):
    body = json.dumps({"model": model, "prompt": f"Story {i}: once upon a time", "max_tokens": n, "temperature": 0.8, "seed": i, "ignore_eos": True}).encode()
    req = urllib.request.Request(base + "/v1/completions", body, {"content-type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=300))["usage"]["completion_tokens"]
res = {}
for model in ("gpu", "cpu"):
    one(model, 0)  # warm
    t = time.time(); k = one(model, 1); single = k / (time.time() - t)
    t = time.time()
    with cf.ThreadPoolExecutor(par) as ex:
        total = sum(ex.map(lambda i: one(model, i), range(2, 2 + par)))
    agg = total / (time.time() - t)
    res[model] = (single, agg)
    print(f"{model}: decode {single:.1f} tok/s, aggregate {agg:.1f} tok/s")
print(f"GPU/CPU: decode {res['gpu'][0] / res['cpu'][0]:.2f}x, aggregate {res['gpu'][1] / res['cpu'][1]:.2f}x")
PY
grep -h "offloaded\|CUDA\|ggml_cuda" "$work/jetaid.log" | head -5 >&2 || true
step "done"
