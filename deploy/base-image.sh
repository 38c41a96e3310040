#!/usr/bin/env bash
# Build a local base image from Debian packages, for machines that reach no image registry.
#
#   deploy/base-image.sh [IMAGE]          # default IMAGE: dakera-base:bookworm
#
# debootstrap (bookworm, minbase) + the packages the Dockerfile's build stages need (Python 3.11,
# venv, headers and g++ for hnswlib), then `docker import`. The Dockerfile's final stage copies
# only the Python runtime and the shared libraries it loads out of this image, so what is
# installed here never reaches the final image. On a machine that reaches Docker Hub, skip this
# and build with `--build-arg BASE_IMAGE=python:3.11-bookworm`.
#
# Needs root (debootstrap), dockerd, and a Debian mirror (DEBIAN_MIRROR). The root file system is
# cached as a tarball in DAKERA_BASE_CACHE (default /var/cache/dakera-base), keyed by the package
# list, so a second build on the same machine only re-imports it. CA certificates the host adds
# in /usr/local/share/ca-certificates (an egress proxy's) are added too, so pip in the build stage
# trusts the same HTTPS as the host; the image is for this machine, never for publishing.
set -euo pipefail

IMAGE="${1:-dakera-base:bookworm}"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="python3,python3-venv,python3-dev,g++,ca-certificates"
CACHE="${DAKERA_BASE_CACHE:-/var/cache/dakera-base}"
DOCKER="${DOCKER:-docker}"

key="$(printf '%s %s %s' "$SUITE" "$PACKAGES" "$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null | sha256sum)" | sha256sum | cut -c1-16)"
tarball="$CACHE/$SUITE-$key.tar"
mkdir -p "$CACHE"

if [ ! -s "$tarball" ]; then
  root="$(mktemp -d /var/tmp/dakera-base.XXXXXX)"
  trap 'rm -rf "$root"' EXIT
  echo "base-image: debootstrap $SUITE into $root (a few minutes)" >&2
  mkdir -p "$CACHE/debs"  # downloaded packages, reused when the package list changes
  debootstrap --variant=minbase --cache-dir="$CACHE/debs" --include="$PACKAGES" \
    "$SUITE" "$root" "$MIRROR" >&2
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null
  fi
  # Package caches and lists are not needed by the build stages.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/*
  tar --numeric-owner -C "$root" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
fi

"$DOCKER" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/usr/bin/python3"]' \
  "$tarball" "$IMAGE" >/dev/null
echo "base-image: $IMAGE from $tarball" >&2
