#!/usr/bin/env bash
# Builds actionlint (https://github.com/rhysd/actionlint), the linter of GitHub Actions workflows
# that tests/release.rs runs on .github/workflows/, from the Go module proxy at a pinned version,
# into a cache directory outside the repository keyed by the version and this script. Prints the
# binary's path as its last line.
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
rm -rf "$out"; mv "$tmp" "$out"
echo "build.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$out/actionlint"
