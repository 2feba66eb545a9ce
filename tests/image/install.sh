#!/usr/bin/env bash
# Fetches Debian packages for the container image, at the versions this machine's apt sources
# offer, into a cache directory keyed by those versions. Prints that directory as its last line.
#
#   install.sh base    the image's base: libc6, libgcc-s1 (with gcc-12-base, which holds its
#                      copyright file) and ca-certificates. For each package
#                      writes <name>.tar (its file system tree, `dpkg-deb --fsys-tarfile`) and
#                      <name>.control (its control fields), plus `packages` (name version arch per
#                      line) and `release` (ID, VERSION_ID, VERSION_CODENAME of this Debian).
#                      `cargo xtask image` builds the image's base layer from these.
#   install.sh tools   runc and umoci, unpacked (no root needed, nothing installed system-wide);
#                      the directory has bin/runc and bin/umoci. The image smoke test uses them.
#
# apt-get downloads the packages and checks them against the signed package lists. When apt
# knows no version of a package (no `apt-get update` yet on a fresh machine), it runs
# `apt-get update` once if it is root, and fails with that advice otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
set_name=${1:-}
case "$set_name" in
  base) pkgs=(libc6 libgcc-s1 gcc-12-base ca-certificates) ;;
  tools) pkgs=(runc umoci) ;;
  *) echo "usage: install.sh base|tools" >&2; exit 2 ;;
esac
for cmd in apt-cache apt-get dpkg-deb dpkg sha256sum; do
  command -v "$cmd" >/dev/null || { echo "install.sh: $cmd is required (a Debian or Ubuntu machine)" >&2; exit 1; }
done
arch=$(dpkg --print-architecture)

candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }'; }

versions=()
for p in "${pkgs[@]}"; do
  v=$(candidate "$p")
  if [ -z "$v" ] || [ "$v" = "(none)" ]; then
    if [ "$(id -u)" = 0 ] && [ -z "${updated:-}" ]; then
      echo "install.sh: apt knows no version of $p; running apt-get update" >&2
      apt-get update -qq >&2
      updated=1
      v=$(candidate "$p")
    fi
    if [ -z "$v" ] || [ "$v" = "(none)" ]; then
      echo "install.sh: apt knows no version of $p (run apt-get update as root first)" >&2
      exit 1
    fi
  fi
  versions+=("$p=$v")
done

. /etc/os-release
release="ID=${ID:-}
VERSION_ID=${VERSION_ID:-}
VERSION_CODENAME=${VERSION_CODENAME:-}"
key=$( { printf '%s\n' "$set_name" "$arch" "${versions[@]}" "$release"; cat "$0"; } | sha256sum | cut -c1-16)
cache=${ECR_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecr-operator}
out="$cache/image-$set_name/$key"
if [ -f "$out/.complete" ]; then echo "$out"; exit 0; fi

rm -rf "$out"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
apt_opts=()
# As root, apt-get downloads as the _apt user, which cannot write to this private directory.
if [ "$(id -u)" = 0 ]; then apt_opts=(-o APT::Sandbox::User=root); fi
echo "install.sh: downloading ${versions[*]} ($arch)" >&2
(cd "$tmp" && apt-get download -qq "${apt_opts[@]}" "${versions[@]}" >&2)

: >"$out/packages"
for p in "${pkgs[@]}"; do
  deb=$(ls "$tmp/${p}_"*.deb)
  v=$(dpkg-deb --field "$deb" Version)
  a=$(dpkg-deb --field "$deb" Architecture)
  echo "$p $v $a" >>"$out/packages"
  case "$set_name" in
    base)
      dpkg-deb --fsys-tarfile "$deb" >"$out/$p.tar"
      dpkg-deb --field "$deb" >"$out/$p.control"
      ;;
    tools)
      dpkg-deb -x "$deb" "$out/root"
      ;;
  esac
done
case "$set_name" in
  base) printf '%s\n' "$release" >"$out/release" ;;
  tools)
    mkdir -p "$out/bin"
    ln -s ../root/usr/sbin/runc "$out/bin/runc"
    ln -s ../root/usr/bin/umoci "$out/bin/umoci"
    "$out/bin/runc" --version >&2
    "$out/bin/umoci" --version >&2
    ;;
esac
touch "$out/.complete"
echo "$out"
