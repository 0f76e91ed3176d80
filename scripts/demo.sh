#!/usr/bin/env bash
# demo.sh: two hosts in network namespaces, joined by a veth underlay, each
# running `vxnet dataplane` with one container namespace behind it. Shows
# ping and a TCP transfer across the VXLAN overlay, then cleans up.
# Needs root. Usage: scripts/demo.sh [path/to/vxnet]
set -euo pipefail

VXNET=${1:-./bin/vxnet}
VXNET=$(readlink -f "$VXNET")
id=demo$$
h1=$id-h1 h2=$id-h2 c1=$id-c1 c2=$id-c2
work=$(mktemp -d)
pids=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in $h1 $h2 $c1 $c2; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }

say "underlay: hosts $h1 (198.18.0.1) and $h2 (198.18.0.2) joined by a veth pair"
for ns in $h1 $h2 $c1 $c2; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$h1" link add u0 type veth peer name u0 netns "$h2"
ip -n "$h1" addr add 198.18.0.1/24 dev u0; ip -n "$h1" link set u0 up
ip -n "$h2" addr add 198.18.0.2/24 dev u0; ip -n "$h2" link set u0 up

conf() { # conf VTEP CONTAINER-NS LOCAL-IP REMOTE-VTEP REMOTE-IP
  cat <<JSON
{
  "vtep": "$1",
  "networks": [{
    "vni": 4097,
    "subnets": ["10.0.9.0/24", "fd00:9::/64"],
    "endpoints": [{"name": "web", "netns": "$2", "ifname": "eth0",
                   "addresses": ["10.0.9.$3/24", "fd00:9::$3/64"]}],
    "remotes": [{"vtep": "$4", "addresses": ["10.0.9.$5", "fd00:9::$5"]}]
  }]
}
JSON
}
conf 198.18.0.1 "$c1" 2 198.18.0.2 3 > "$work/h1.json"
conf 198.18.0.2 "$c2" 3 198.18.0.1 2 > "$work/h2.json"
say "vxnet dataplane on each host (config of host 1):"
cat "$work/h1.json"

for h in 1 2; do
  ns=$id-h$h
  ip netns exec "$ns" "$VXNET" dataplane --config "$work/h$h.json" --stats-socket "$work/h$h.sock" \
    2> "$work/h$h.log" &
  pids+=($!)
done
for h in 1 2; do
  for _ in $(seq 100); do [ -S "$work/h$h.sock" ] && break; sleep 0.1; done
  [ -S "$work/h$h.sock" ] || { echo "demo: vxnet on host $h did not start:"; cat "$work/h$h.log"; exit 1; }
done

say "container $c1 (10.0.9.2) pings container $c2 (10.0.9.3) across the overlay"
ip netns exec "$c1" ping -c 3 -i 0.2 10.0.9.3
say "and over IPv6 (fd00:9::2 -> fd00:9::3)"
ip netns exec "$c1" ping -6 -c 3 -i 0.2 fd00:9::3

if command -v iperf3 >/dev/null; then
  say "TCP transfer for 5 s with iperf3, $c1 -> $c2"
  ip netns exec "$c2" iperf3 -s -1 -B 10.0.9.3 >/dev/null &
  pids+=($!)
  for _ in $(seq 50); do ip netns exec "$c2" ss -ltn | grep -q 5201 && break; sleep 0.1; done
  ip netns exec "$c1" iperf3 -c 10.0.9.3 -t 5 -f g | tail -4
fi

say "counters of host 1's switch (vxnet dataplane stats)"
"$VXNET" dataplane stats --stats-socket "$work/h1.sock"
echo
say "done; removing namespaces"
