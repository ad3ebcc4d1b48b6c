#!/usr/bin/env bash
# rootfs.sh CACHE_DIR — prints the path of a cached Debian root file system
# tarball for the .deb test, building it with debootstrap when it is missing.
#
# The tarball holds a minimal bookworm with systemd (to run as PID 1), curl and
# procps for the checks, man-db (systemd-analyze verify opens the units'
# Documentation= man pages), and apt lists, so that `apt-get install
# ./jetai_*.deb` resolves the package's dependencies as on a real system
# (all of them are in the root file system already, so a run needs no
# network). Its name carries a hash of what goes in, so changing the list
# below builds a new one.
set -euo pipefail

cache=${1:?usage: rootfs.sh CACHE_DIR}
suite=${DEB_SUITE:-bookworm}
mirror=${DEB_MIRROR:-http://deb.debian.org/debian}
include=systemd,systemd-sysv,curl,procps,man-db
key=$(printf '%s\n' "$suite" "$mirror" "$include" v2 | sha256sum | cut -c1-12)
tarball=$cache/rootfs-$suite-amd64-$key.tar.gz

if [ -s "$tarball" ]; then
	echo "$tarball"
	exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
cleanup() {
	for m in proc sys dev; do umount -l "$work/root/$m" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

echo "rootfs: debootstrap $suite into $work/root (once; cached as $tarball)" >&2
debootstrap --variant=minbase --include="$include" "$suite" "$work/root" "$mirror" >&2

# Apt lists for resolving dependencies; no downloaded .debs; nothing
# specific to this build.
cat > "$work/root/etc/apt/sources.list" <<SRC
deb $mirror $suite main
SRC
mount -t proc proc "$work/root/proc"
chroot "$work/root" apt-get update -qq >&2
chroot "$work/root" apt-get clean >&2
umount "$work/root/proc"
# An empty machine-id makes systemd generate a fresh one at each boot.
: > "$work/root/etc/machine-id"
echo jetai-test > "$work/root/etc/hostname"

tar -C "$work/root" --numeric-owner --xattrs -czf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
# Older tarballs (other contents) are not used any more.
find "$cache" -maxdepth 1 -name 'rootfs-*.tar.gz' ! -path "$tarball" -delete
echo "$tarball"
