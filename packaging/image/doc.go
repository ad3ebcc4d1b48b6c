// Package image assembles jetai's OCI container image without a container
// daemon: a minimal Debian root file system (a debootstrap tarball, see
// rootfs.sh) as the base layer, and a layer with what the .deb installs
// (jetaid, jetai-ctl, the sample config made for a container, the man
// pages) plus the non-root user jetai, for linux/amd64 and linux/arm64,
// under one multi-arch index. It writes an OCI image layout and a
// docker-archive tarball per architecture (for `docker load` / `podman
// load`).
//
// Builds are reproducible: every timestamp is Options.Created, the base
// layer's entries are rewritten in order with it, and nothing of the build
// machine (user names, times, paths) goes in, so the same inputs give the
// same digests.
//
// It is its own Go module so that go-containerregistry stays out of
// jetai's main module; cmd/jetai-image is its command line, run by
// `make image`.
package image
