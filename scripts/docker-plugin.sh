#!/bin/sh
# Builds the directory of vxnet's managed Docker plugin:
#   scripts/docker-plugin.sh VXNET_BINARY OUT_DIR
# OUT_DIR gets config.json and rootfs/ (the vxnet binary, and nft: the
# agent programs the host's gateways with it; with their libraries).
# Then: docker plugin create vxnet OUT_DIR (README, "With Docker").
set -eu
bin=$1
out=$2
here=$(dirname "$0")
rm -rf "$out"
mkdir -p "$out/rootfs/usr/sbin" "$out/rootfs/host" "$out/rootfs/tmp" "$out/rootfs/run/docker/plugins" \
  "$out/rootfs/dev" "$out/rootfs/proc" "$out/rootfs/sys" "$out/rootfs/etc"
cp "$here/../plugin/docker/managed/config.json" "$out/config.json"
cp "$bin" "$out/rootfs/vxnet"
nft=$(command -v nft || echo /usr/sbin/nft)
[ -x "$nft" ] || { echo "nft not found: apt-get install nftables" >&2; exit 1; }
cp "$nft" "$out/rootfs/usr/sbin/nft"
# The libraries of both (none for a static vxnet); every one must be found.
libs=$( (ldd "$nft" 2>&1 || true; ldd "$bin" 2>&1 || true) )
if echo "$libs" | grep -q "not found"; then
  echo "missing libraries:" >&2; echo "$libs" | grep "not found" >&2; exit 1
fi
for lib in $(echo "$libs" | grep -o '/[^ ]*' | sort -u); do
  mkdir -p "$out/rootfs$(dirname "$lib")"
  cp -L "$lib" "$out/rootfs$lib"
done
echo "plugin directory: $out (docker plugin create vxnet $out)"
