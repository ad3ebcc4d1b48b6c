#!/bin/sh
# build.sh — builds the CUDA ggml backend from the pinned module's own ggml
# sources and CMake files, and the jetai-cuda .deb; run by `make cuda-backend`.
#
# ARCH (amd64|arm64, default: this machine) picks the GPU architecture list:
# arm64 is JetPack 6 on a Jetson Orin (sm_87), amd64 a data-centre GPU with
# Debian's nvidia-cuda-toolkit (sm_90). CUDA_ARCHS overrides it. NVCC names
# the compiler (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc);
# CUDAHOSTCXX a host compiler nvcc accepts, where the default g++ is too new.
#
# Output, cached under .cache/cuda/ARCH-SM (reused while the module, the
# architecture list and this script are unchanged):
#   .cache/cuda/ARCH-SM/libggml-cuda.so, libggml-base.so   the backend
#   dist/jetai-cuda_VERSION_ARCH.deb                          with DEB=1
set -eu
cd "$(dirname "$0")/../.."
GO=${GO:-go}

arch=${ARCH:-$(dpkg --print-architecture 2>/dev/null || uname -m)}
case $arch in
x86_64) arch=amd64 ;;
aarch64) arch=arm64 ;;
esac
case $arch in
arm64) archs=${CUDA_ARCHS:-87} ;;
amd64) archs=${CUDA_ARCHS:-90} ;;
*) echo "make cuda-backend: ARCH must be amd64 or arm64, not $arch" >&2; exit 2 ;;
esac

nvcc=${NVCC:-$(command -v nvcc || true)}
if [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
	nvcc=/usr/local/cuda/bin/nvcc
fi
if [ -z "$nvcc" ] || ! [ -x "$nvcc" ]; then
	cat >&2 <<'MSG'
make cuda-backend: nvcc (the CUDA compiler) was not found.
  JetPack 6 (Jetson):  sudo apt install cuda-toolkit-12-6   (nvcc in /usr/local/cuda/bin)
  Debian 12 (x86-64):  enable non-free in one line, then install the toolkit:
    echo 'deb http://deb.debian.org/debian bookworm main contrib non-free' | sudo tee /etc/apt/sources.list.d/non-free.list
    sudo apt update && sudo apt install nvidia-cuda-toolkit
  Or set NVCC=/path/to/nvcc. The CPU build (make build) needs none of this.
MSG
	exit 2
fi
if ! command -v cmake >/dev/null; then
	echo "make cuda-backend: cmake was not found (apt install cmake; 3.21 or newer)" >&2
	exit 2
fi

mod=$("$GO" list -m -f '{{.Dir}}' github.com/ollama/ollama)
ver=$("$GO" list -m -f '{{.Version}}' github.com/ollama/ollama)
out=.cache/cuda/$arch-sm$(echo "$archs" | tr ';,' '__')
stamp="$ver $archs $(cksum <"$0" | cut -d' ' -f1) $("$nvcc" --version | tail -1)"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -f "$out/libggml-cuda.so" ]; then
	echo "cuda-backend: cached in $out" >&2
else
	mkdir -p "$out"
	# The module's top-level CMakeLists.txt (Ollama's) configures ggml as
	# shared libraries with GGML_BACKEND_DL, which is what a backend that
	# ggml loads at run time needs; only the ggml-cuda target (and the
	# ggml-base it links) is built. $ORIGIN lets libggml-cuda.so find the
	# libggml-base.so shipped beside it.
	# shellcheck disable=SC2016
	cmake -S "$mod" -B "$out/build" -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_CUDA_COMPILER="$nvcc" ${CUDAHOSTCXX:+-DCMAKE_CUDA_HOST_COMPILER="$CUDAHOSTCXX"} \
		-DCMAKE_CUDA_ARCHITECTURES="$archs" -DGGML_CCACHE=OFF \
		-DCMAKE_BUILD_RPATH='$ORIGIN' -DCMAKE_INSTALL_RPATH='$ORIGIN' >&2
	cmake --build "$out/build" --target ggml-cuda --parallel "$(nproc)" >&2
	for f in libggml-cuda.so libggml-base.so; do
		p=$(find "$out/build" -name "$f" -type f | head -1)
		[ -n "$p" ] || { echo "cuda-backend: the build made no $f" >&2; exit 1; }
		cp "$p" "$out/$f"
	done
	echo "$stamp" >"$out/stamp"
fi
ls -l "$out"/*.so >&2

if [ "${DEB:-1}" = 1 ]; then
	version=${DEB_VERSION:-$(packaging/deb-version.sh)}
	mkdir -p dist
	deb=dist/jetai-cuda_${version}_$arch.deb
	DEB_ARCH=$arch DEB_VERSION=$version CUDA_STAGE=$out \
		"$GO" tool nfpm package --config packaging/cuda/nfpm.yaml --packager deb --target "$deb" >&2
	echo "$deb"
fi
