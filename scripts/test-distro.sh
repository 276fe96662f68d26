#!/usr/bin/env bash
# The optional distribution test (`pnpm test:distro`, not run in CI): imports
# a real Debian root filesystem into m-docker and runs apt-get and bash from
# it in containers.
#
# The root filesystem is Debian bookworm, variant minbase, built with
# debootstrap from the mirror that apt on this machine already uses. The
# tarball is cached in ${XDG_CACHE_HOME:-~/.cache}/m-docker/, so only the
# first run downloads packages. Needs root, a Debian or Ubuntu machine and
# a built checkout (`pnpm build`).
#
# Usage: scripts/test-distro.sh [--fetch-only]
#   --fetch-only  build and cache the tarball, then stop before m-docker runs
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=bookworm
IMAGE=debian:bookworm
DEFAULT_MIRROR=http://deb.debian.org/debian
M_DOCKER=./m-docker

fail() {
  echo "test-distro: $*" >&2
  exit 1
}

fetch_only=false
case "${1-}" in
  '') ;;
  --fetch-only) fetch_only=true ;;
  *) fail "unknown argument $1 (usage: scripts/test-distro.sh [--fetch-only])" ;;
esac

[ "$(id -u)" -eq 0 ] || fail "run it as root (debootstrap and m-docker need root)"
command -v dpkg >/dev/null || fail "dpkg not found: this test runs on Debian or Ubuntu only"

ARCH=$(dpkg --print-architecture)
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/m-docker"
TARBALL="$CACHE_DIR/debian-$SUITE-minbase-$ARCH.tar"
WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/m-docker-distro.XXXXXX")

# Deletes a tree that this script created, unless something is mounted below
# it. debootstrap mounts proc, sysfs and /dev inside its target, and this
# script runs it in a private mount namespace that ends with it, so no mount
# should remain here. The check guards against a mistake in that, because
# removing a tree through a bind mount of /dev would delete the host's
# device nodes.
remove_tree() {
  local tree=$1
  [ -e "$tree" ] || return 0
  if findmnt -rn -o TARGET | awk -v tree="$tree" 'index($0, tree) == 1 { found = 1 } END { exit !found }'; then
    echo "test-distro: not removing $tree because something is mounted below it" >&2
    return 1
  fi
  rm -rf --one-file-system -- "$tree"
}

cleanup() {
  rm -f -- "$TARBALL.partial"
  remove_tree "$WORK_DIR"
}
trap cleanup EXIT

# Prints the first apt source URI that serves $SUITE, such as
# http://deb.debian.org/debian/, or nothing when apt has none.
apt_mirror() {
  # shellcheck disable=SC2016 # apt-get expands $(...) in --format itself.
  apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(TARGET_OF)' 2>/dev/null |
    awk -v suite="$SUITE" '$2 == suite && $3 == "deb" { print $1; exit }'
}

install_debootstrap() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
  [ ${#missing[@]} -eq 0 ] && return 0

  echo "test-distro: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Builds the root filesystem with debootstrap and writes it to $TARBALL.
# debootstrap runs in a new mount namespace with private propagation, so
# its mounts below the target never reach the host, and in a new PID
# namespace, so no process it starts outlives it.
build_tarball() {
  local mirror target started
  mirror=$(apt_mirror || true)
  mirror=${mirror:-$DEFAULT_MIRROR}
  target="$WORK_DIR/rootfs"
  started=$SECONDS

  install_debootstrap
  echo "test-distro: debootstrap --variant=minbase $SUITE from $mirror"
  unshare --mount --propagation private --pid --fork \
    debootstrap --variant=minbase --arch="$ARCH" "$SUITE" "$target" "$mirror"

  mkdir -p "$CACHE_DIR"
  tar --numeric-owner --xattrs -C "$target" -cf "$TARBALL.partial" .
  mv -- "$TARBALL.partial" "$TARBALL"
  remove_tree "$target"
  echo "test-distro: cached $TARBALL after $((SECONDS - started)) s"
}

if [ -f "$TARBALL" ]; then
  echo "test-distro: using the cached $TARBALL"
else
  build_tarball
fi
$fetch_only && exit 0

root="$WORK_DIR/m-docker-root"
"$M_DOCKER" --root "$root" image import "$TARBALL" "$IMAGE" ||
  fail "m-docker image import $TARBALL $IMAGE failed"

apt_version=$("$M_DOCKER" --root "$root" run --rm --image "$IMAGE" apt-get --version) ||
  fail "m-docker run --image $IMAGE apt-get --version failed"
case "${apt_version%%$'\n'*}" in
  "apt "[0-9]*) ;;
  *) fail "apt-get --version printed \"${apt_version%%$'\n'*}\", expected a first line \"apt VERSION (ARCH)\"" ;;
esac

echo_output=$("$M_DOCKER" --root "$root" run --rm --image "$IMAGE" bash -c 'echo ok') ||
  fail "m-docker run --image $IMAGE bash -c 'echo ok' failed"
[ "$echo_output" = ok ] || fail "bash -c 'echo ok' printed \"$echo_output\", expected \"ok\""

echo "test-distro: ok (${apt_version%%$'\n'*}; bash ran)"
