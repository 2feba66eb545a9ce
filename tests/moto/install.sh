#!/usr/bin/env bash
# Installs the pinned moto (requirements.txt) into a cached virtualenv and prints its python path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
key=$(cat "$here/requirements.txt" | sha256sum | cut -c1-16)
cache=${ECR_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecr-operator}
venv="$cache/moto/$key"
if [ -f "$venv/.complete" ]; then echo "$venv/bin/python"; exit 0; fi
py=$(command -v python3 || true)
[ -n "$py" ] || { echo "install.sh: python3 (>= 3.10) is required" >&2; exit 1; }
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
echo "install.sh: installing moto into $venv" >&2
"$py" -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
touch "$venv/.complete"
echo "$venv/bin/python"
