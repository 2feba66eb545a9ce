#!/usr/bin/env bash
# Builds actionlint (https://github.com/rhysd/actionlint), the linter of GitHub Actions workflows
# that tests/release.rs runs on .github/workflows/, from the Go module proxy at a pinned version,
# into a cache directory outside the repository keyed by the version and this script. Prints the
# binary's path as its last line. Beside it, shellcheck from this machine's Debian packages
# (apt-get download, unpacked, nothing installed system-wide), which actionlint runs on every
# `run:` script; without it actionlint would skip those checks silently.
#
#   tests/actionlint/build.sh            # build if missing, print the binary's path
#   tests/actionlint/build.sh --key      # print only the cache key
#
# To move the pin: change VERSION (a released tag of rhysd/actionlint), run the test.
set -euo pipefail
VERSION=v1.7.12
here=$(cd "$(dirname "$0")" && pwd)
key="$VERSION-$(sha256sum "$here/build.sh" | cut -c1-8)"
if [ "${1:-}" = "--key" ]; then echo "$key"; exit 0; fi
cache=${ECR_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecr-operator}
out="$cache/actionlint/$key"
if [ -x "$out/actionlint" ]; then echo "$out/actionlint"; exit 0; fi

command -v go >/dev/null || { echo "build.sh: go is not installed (Go 1.26 is required)" >&2; exit 1; }
# go install verifies the module against the Go checksum database (sum.golang.org).
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-trimpath
tmp="$out.tmp.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "build.sh: building actionlint $VERSION into $out" >&2
start=$(date +%s)
GOBIN="$tmp" go install -ldflags "-s -w" "github.com/rhysd/actionlint/cmd/actionlint@$VERSION"
"$tmp/actionlint" -version >&2
command -v apt-get >/dev/null || { echo "build.sh: apt-get is required for shellcheck (a Debian or Ubuntu machine)" >&2; exit 1; }
apt_opts=()
# As root, apt-get downloads as the _apt user, which cannot write to this private directory.
if [ "$(id -u)" = 0 ]; then apt_opts=(-o APT::Sandbox::User=root); fi
if ! (cd "$tmp" && apt-get download -qq "${apt_opts[@]}" shellcheck >&2); then
  [ "$(id -u)" = 0 ] || { echo "build.sh: apt knows no shellcheck (run apt-get update as root)" >&2; exit 1; }
  apt-get update -qq >&2
  (cd "$tmp" && apt-get download -qq "${apt_opts[@]}" shellcheck >&2)
fi
dpkg-deb -x "$tmp"/shellcheck_*.deb "$tmp/root"
mv "$tmp/root/usr/bin/shellcheck" "$tmp/shellcheck"
rm -rf "$tmp/root" "$tmp"/shellcheck_*.deb
"$tmp/shellcheck" --version >&2
rm -rf "$out"; mv "$tmp" "$out"
echo "build.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$out/actionlint"
