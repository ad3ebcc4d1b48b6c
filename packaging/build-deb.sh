#!/usr/bin/env bash
# build-deb.sh — builds dist/jetai_VERSION_ARCH.deb; run by `make deb`.
#
# Environment: ARCH (amd64 or arm64), DEB_CGO_OPT (C/C++ flags of the
# llama.cpp build for that target), DEB_VERSION (default: from git),
# DEB_OUT (default dist). arm64 cross-compiles with Debian's
# aarch64-linux-gnu-gcc/g++.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=${ARCH:?ARCH must be amd64 or arm64}
opt=${DEB_CGO_OPT:?DEB_CGO_OPT must give the C flags}
version=${DEB_VERSION:-$(packaging/deb-version.sh)}
out=${DEB_OUT:-dist}
stage=build/deb/$arch
GO=${GO:-go}

case $arch in
amd64) cc=gcc cxx=g++ objdump=objdump ;;
arm64) cc=aarch64-linux-gnu-gcc cxx=aarch64-linux-gnu-g++ objdump=aarch64-linux-gnu-objdump ;;
*) echo "build-deb: unknown ARCH $arch (amd64 or arm64)" >&2; exit 2 ;;
esac
for tool in "$cc" "$cxx" "$objdump"; do
	command -v "$tool" >/dev/null || { echo "build-deb: $tool not found (apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu for arm64)" >&2; exit 1; }
done

rm -rf "$stage"
mkdir -p "$stage" "$out"
echo "build-deb: jetai $version for $arch, CGO flags: $opt" >&2
env GOOS=linux GOARCH="$arch" CGO_ENABLED=1 CC="$cc" CXX="$cxx" \
	CGO_CFLAGS="$opt" CGO_CXXFLAGS="$opt" \
	"$GO" build -trimpath -buildmode=pie \
	-ldflags "-s -w -X github.com/jetai/jetai/version.Version=$version -extldflags=-Wl,-z,relro,-z,now" \
	-o "$stage/" ./cmd/jetaid
# jetai-ctl is pure Go: a static binary with no library to depend on.
env GOOS=linux GOARCH="$arch" CGO_ENABLED=0 \
	"$GO" build -trimpath \
	-ldflags "-s -w -X github.com/jetai/jetai/version.Version=$version" \
	-o "$stage/" ./cmd/jetai-ctl
if "$objdump" -p "$stage/jetai-ctl" | grep -q NEEDED; then
	echo "build-deb: jetai-ctl is linked against shared libraries; it must build with CGO_ENABLED=0" >&2
	exit 1
fi

# The package's Depends (nfpm.yaml) promise glibc >= 2.34 and libstdc++ of
# GCC 12 (GLIBCXX_3.4.30); refuse binaries that need more.
check_floor() { # binary prefix floor
	local need
	need=$("$objdump" -T "$1" | { grep -oE "\b$2[0-9.]+" || true; } | sed "s/^$2//" | sort -uV | tail -1)
	if [ -n "$need" ] && [ "$(printf '%s\n' "$need" "$3" | sort -V | tail -1)" != "$3" ]; then
		echo "build-deb: $1 needs $2$need, above the package's Depends ($2$3)" >&2
		exit 1
	fi
}
check_floor "$stage/jetaid" GLIBC_ 2.34
check_floor "$stage/jetaid" GLIBCXX_ 3.4.30

# Generated files: bash completion from the CLI itself (a host build of it),
# man pages and the Debian changelog, compressed as Debian wants them.
CGO_ENABLED=0 "$GO" build -o build/deb/host/ ./cmd/jetai-ctl
build/deb/host/jetai-ctl completion bash > "$stage/jetai-ctl.bash"
gzip -9n < packaging/man/jetaid.8 > "$stage/jetaid.8.gz"
gzip -9n < packaging/man/jetai-ctl.1 > "$stage/jetai-ctl.1.gz"
{
	echo "jetai ($version) unstable; urgency=medium"
	echo
	echo "  * Built from git commit $(git rev-parse HEAD)."
	echo
	echo " -- jetai maintainers <maintainers@jetai.example>  $(git show -s --format=%aD HEAD)"
} | gzip -9n > "$stage/changelog.gz"

deb=$out/jetai_${version}_$arch.deb
rm -f "$out"/jetai_*_"$arch".deb
DEB_ARCH=$arch DEB_VERSION=$version DEB_STAGE=$stage \
	"$GO" tool nfpm package --config nfpm.yaml --packager deb --target "$deb" >&2
echo "$deb"
