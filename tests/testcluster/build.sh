#!/usr/bin/env bash
# Builds the multi-call `testcluster` binary (kube-apiserver, kube-controller-manager, kubectl,
# embedded etcd) from the Kubernetes Go modules, into a cache directory outside the repository
# keyed by a hash of go.mod, go.sum, the Go sources and this script. Prints the directory.
#
#   tests/testcluster/build.sh            # build if missing, print the bin directory
#   tests/testcluster/build.sh --node     # also build testcluster-node (the same plus kubelet,
#                                         # kube-scheduler and the node supervisor: -tags node)
#   tests/testcluster/build.sh --key      # print only the cache key
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
V=v1.34.4; MAJ=1; MIN=34
key=$(cat go.mod go.sum ./*.go build.sh | sha256sum | cut -c1-16)
if [ "${1:-}" = "--key" ]; then echo "$key"; exit 0; fi
node=; if [ "${1:-}" = "--node" ]; then node=1; fi
cache=${ECR_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecr-operator}
out="$cache/testcluster/$key"
if [ -x "$out/testcluster" ] && { [ -z "$node" ] || [ -x "$out/testcluster-node" ]; }; then echo "$out"; exit 0; fi

command -v go >/dev/null || { echo "build.sh: go is not installed (Go 1.26 is required)" >&2; exit 1; }
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
LDF="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDF+=" -X $p.gitVersion=$V -X $p.gitMajor=$MAJ -X $p.gitMinor=$MIN -X $p.gitTreeState=clean"
  LDF+=" -X $p.buildDate=1970-01-01T00:00:00Z -X $p.gitCommit=0000000000000000000000000000000000000000"
done
if [ ! -x "$out/testcluster" ]; then
  tmp="$out.tmp.$$"
  mkdir -p "$tmp"
  echo "build.sh: building testcluster $V into $out (cold builds take 15-30 min on 2 cores)" >&2
  start=$(date +%s)
  go build -p "$(nproc)" -trimpath -ldflags "$LDF" -o "$tmp/testcluster" .
  for n in kubectl kube-apiserver kube-controller-manager etcd; do ln -sf testcluster "$tmp/$n"; done
  rm -rf "$out"; mv "$tmp" "$out"
  echo "build.sh: built in $(( $(date +%s) - start ))s" >&2
fi
if [ -n "$node" ] && [ ! -x "$out/testcluster-node" ]; then
  echo "build.sh: building testcluster-node $V into $out" >&2
  start=$(date +%s)
  go build -p "$(nproc)" -tags node -trimpath -ldflags "$LDF" -o "$out/testcluster-node.tmp.$$" .
  mv "$out/testcluster-node.tmp.$$" "$out/testcluster-node"
  echo "build.sh: built testcluster-node in $(( $(date +%s) - start ))s" >&2
fi
echo "$out"
