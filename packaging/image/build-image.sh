#!/usr/bin/env bash
# build-image.sh — `make image`: jetai's OCI image for linux/amd64 and
# linux/arm64, without a container daemon. The binaries and man pages are
# the .deb build's (build/deb/ARCH, made by `make deb ARCH=...` when
# missing; arm64 is cross-compiled), the base a minimal Debian root file
# system per architecture (rootfs.sh, cached in $JETAI_DEB_CACHE), the
# assembly package image (go-containerregistry). Writes dist/jetai-oci (OCI
# layout, multi-arch index tagged with the version) and
# dist/jetai-image_VERSION_ARCH.tar (docker-archive, for docker/podman
# load). Every timestamp is the commit's, so a rebuild of the same commit
# gives the same digests.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
cache=${JETAI_DEB_CACHE:-/var/cache/jetai-deb-test}
arches=${IMAGE_ARCHES:-amd64 arm64}
version=$(packaging/deb-version.sh)
created=$(git log -1 --format=%ct 2>/dev/null || echo 1)
args=()
for arch in $arches; do
	if [ ! -x "build/deb/$arch/jetaid" ] || [ ! -f "build/deb/$arch/jetaid.8.gz" ]; then
		make deb ARCH="$arch" >&2
	fi
	rootfs=$(packaging/image/rootfs.sh "$arch" "$cache")
	args+=(--arch "$arch=$rootfs:$PWD/build/deb/$arch")
done
first=${arches%% *}
licenses=$(sed -n 's/^license: "\(.*\)"$/\1/p' nfpm.yaml)
mkdir -p dist
(cd packaging/image && "$GO" run ./cmd/jetai-image --version "$version" --revision "$(git rev-parse HEAD)" \
	--licenses "$licenses" --created "$created" --sample ../jetai.hcl --man "../../build/deb/$first" \
	--layout ../../dist/jetai-oci --archives ../../dist "${args[@]}")
