#!/usr/bin/env bash
# Prepares a fresh Debian or Ubuntu machine, as root, to build, run and test
# m-docker: the Debian packages the tests use, pnpm, the workspace's
# dependencies from the lockfile, and a build of every package.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=10.34.9
# procps (ps), iproute2 (ip), util-linux (unshare, setpriv) are used by the
# tests; busybox-static and runc by the benchmark's reference runtime.
# scripts/test-images needs busybox-static and zstd to build the test images.
# tini contains /usr/bin/tini-static, which `m-docker run --init` binds into
# containers; Debian 12 has no separate tini-static package. tmux gives the
# tests of `m-docker run -it` a real terminal.
DEBIAN_PACKAGES=(procps iproute2 util-linux busybox-static runc zstd tini tmux)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run it as root (m-docker needs root to create namespaces)" >&2
  exit 1
fi

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  echo "setup.sh: installing pnpm $PNPM_VERSION"
  npm install --global --silent "pnpm@$PNPM_VERSION"
fi

pnpm install --frozen-lockfile
pnpm build
