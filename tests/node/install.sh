#!/usr/bin/env bash
# Fetches what the test cluster's node runs besides the Kubernetes components, as Debian packages
# at the versions this machine's apt sources offer, unpacked into a cache directory keyed by those
# versions (nothing is installed system-wide, no service is started). Prints that directory as its
# last line; it holds bin/ with:
#
#   containerd, containerd-shim-runc-v2, ctr   the container runtime (package containerd)
#   runc                                       the OCI runtime (package runc)
#   cni/bridge, cni/host-local, cni/loopback   Pod networking (package containernetworking-plugins)
#   iptables                                   iptables-nft with its libraries (package iptables and
#                                              its libraries), for the node's two NAT rules
#   catatonit                                  the sandbox ("pause") process (package catatonit)
#
# `testcluster up --with-node` runs them as its children (tests/testcluster/README.md).
set -euo pipefail
pkgs=(containerd runc containernetworking-plugins iptables libip4tc2 libip6tc2 libxtables12
  libmnl0 libnftnl11 libnetfilter-conntrack3 libnfnetlink0 catatonit)
for cmd in apt-cache apt-get dpkg-deb dpkg sha256sum; do
  command -v "$cmd" >/dev/null || { echo "node/install.sh: $cmd is required (a Debian or Ubuntu machine)" >&2; exit 1; }
done
arch=$(dpkg --print-architecture)

candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }'; }

versions=()
for p in "${pkgs[@]}"; do
  v=$(candidate "$p")
  if [ -z "$v" ] || [ "$v" = "(none)" ]; then
    if [ "$(id -u)" = 0 ] && [ -z "${updated:-}" ]; then
      echo "node/install.sh: apt knows no version of $p; running apt-get update" >&2
      apt-get update -qq >&2
      updated=1
      v=$(candidate "$p")
    fi
    if [ -z "$v" ] || [ "$v" = "(none)" ]; then
      echo "node/install.sh: apt knows no version of $p (run apt-get update as root first)" >&2
      exit 1
    fi
  fi
  versions+=("$p=$v")
done

key=$( { printf '%s\n' "$arch" "${versions[@]}"; cat "$0"; } | sha256sum | cut -c1-16)
cache=${ECR_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ecr-operator}
out="$cache/node/$key"
if [ -f "$out/.complete" ]; then echo "$out"; exit 0; fi

rm -rf "$out"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
apt_opts=()
# As root, apt-get downloads as the _apt user, which cannot write to this private directory.
if [ "$(id -u)" = 0 ]; then apt_opts=(-o APT::Sandbox::User=root); fi
echo "node/install.sh: downloading ${versions[*]} ($arch)" >&2
(cd "$tmp" && apt-get download -qq "${apt_opts[@]}" "${versions[@]}" >&2)

: >"$out/packages"
for p in "${pkgs[@]}"; do
  deb=$(ls "$tmp/${p}_"*.deb)
  echo "$p $(dpkg-deb --field "$deb" Version) $(dpkg-deb --field "$deb" Architecture)" >>"$out/packages"
  dpkg-deb -x "$deb" "$out/root"
done

r=$out/root
lib=$r/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
mkdir -p "$out/bin/cni"
for b in containerd containerd-shim-runc-v2 ctr; do ln -s "../root/usr/bin/$b" "$out/bin/$b"; done
ln -s ../root/usr/sbin/runc "$out/bin/runc"
ln -s ../root/usr/bin/catatonit "$out/bin/catatonit"
for b in bridge host-local loopback; do ln -s "../../root/usr/lib/cni/$b" "$out/bin/cni/$b"; done
# iptables from the unpacked tree: its libraries and extensions, not the system's.
cat >"$out/bin/iptables" <<SH
#!/bin/sh
export LD_LIBRARY_PATH="$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" XTABLES_LIBDIR="$lib/xtables"
exec "$r/usr/sbin/xtables-nft-multi" iptables "\$@"
SH
chmod 0755 "$out/bin/iptables"

"$out/bin/containerd" --version >&2
"$out/bin/runc" --version | head -1 >&2
"$out/bin/iptables" --version >&2
touch "$out/.complete"
echo "$out"
