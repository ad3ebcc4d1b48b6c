#!/usr/bin/env bash
# rootfs.sh ARCH CACHE_DIR — prints the path of a cached minimal Debian root
# file system tarball for the container image (amd64 or arm64), building it
# with debootstrap when it is missing.
#
# It is debootstrap's first stage of --variant=minbase: the required
# packages unpacked (libc6, libstdc++6 and libgcc-s1 are what jetaid needs)
# without running their maintainer scripts, which would need the target's
# CPU (qemu under binfmt_misc for arm64). Nothing in the image runs dpkg or
# apt; /etc/passwd and /etc/group come from base-passwd's masters. What
# only a build leaves (debootstrap's own files, apt lists, caches,
# logs, docs other than copyright) is removed, ld.so.cache is made, and
# the tarball's name carries a hash of what goes in.
set -euo pipefail

arch=${1:?usage: rootfs.sh ARCH CACHE_DIR}
cache=${2:?usage: rootfs.sh ARCH CACHE_DIR}
suite=${DEB_SUITE:-bookworm}
mirror=${DEB_MIRROR:-http://deb.debian.org/debian}
key=$(printf '%s\n' "$suite" "$mirror" "$arch" minbase-foreign v3 | sha256sum | cut -c1-12)
tarball=$cache/image-rootfs-$suite-$arch-$key.tar

if [ -s "$tarball" ]; then
	echo "$tarball"
	exit 0
fi
command -v debootstrap >/dev/null || { echo "rootfs: debootstrap not found (apt-get install debootstrap)" >&2; exit 1; }

mkdir -p "$cache"
work=$(mktemp -d "$cache/image-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "rootfs: debootstrap --foreign $suite $arch into $work/root (once; cached as $tarball)" >&2
debootstrap --foreign --arch="$arch" --variant=minbase "$suite" "$work/root" "$mirror" >&2
r=$work/root
rm -rf "$r/debootstrap" "$r/var/cache/apt" "$r/var/lib/apt/lists" "$r/var/log"/* "$r/var/cache/debconf"/*-old \
	"$r/usr/share/man" "$r/usr/share/info" "$r/usr/share/locale" "$r/usr/share/doc"/*/changelog*
mkdir -p "$r/var/cache/apt" "$r/var/lib/apt/lists"
: > "$r/etc/machine-id"
# The first stage points /proc at the host's; the runtime mounts one there.
if [ -L "$r/proc" ]; then rm "$r/proc" && mkdir -m 0555 "$r/proc"; fi
# base-passwd's postinst would install these; its masters are unpacked.
for f in passwd group; do
	[ -s "$r/etc/$f" ] || cp "$r/usr/share/base-passwd/$f.master" "$r/etc/$f"
done
# The dynamic linker's cache, as the second stage's ldconfig would make it.
ldconfig -r "$r" 2>/dev/null || true

tar -C "$r" --numeric-owner --sort=name -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
find "$cache" -maxdepth 1 -name "image-rootfs-*-$arch-*.tar" ! -path "$tarball" -delete
echo "$tarball"
