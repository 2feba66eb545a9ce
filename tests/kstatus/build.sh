#!/usr/bin/env bash
# Builds `kstatus`, a small command that prints the verdict of the real kstatus library
# (sigs.k8s.io/cli-utils/pkg/kstatus/status) for each object of a JSON array on stdin, into a
# cache directory outside the repository keyed by a hash of go.mod, go.sum, the Go sources and
# this script. Prints the binary's path as its last line.
#
#   tests/kstatus/build.sh            # build if missing, print the binary's path
#   tests/kstatus/build.sh --key      # print only the cache key
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
key=$(cat go.mod go.sum ./*.go build.sh | sha256sum | cut -c1-16)
if [ "${1:-}" = "--key" ]; then echo "$key"; exit 0; fi
cache=${ECR_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecr-operator}
out="$cache/kstatus/$key"
if [ -x "$out/kstatus" ]; then echo "$out/kstatus"; exit 0; fi

command -v go >/dev/null || { echo "build.sh: go is not installed (Go 1.26 is required)" >&2; exit 1; }
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
tmp="$out.tmp.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "build.sh: building kstatus into $out" >&2
start=$(date +%s)
go build -trimpath -ldflags "-s -w" -o "$tmp/kstatus" .
rm -rf "$out"; mv "$tmp" "$out"
echo "build.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$out/kstatus"
