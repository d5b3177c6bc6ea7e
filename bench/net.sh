#!/usr/bin/env bash
# Network benchmarks, each against its peer in the same run (results in BENCHMARKS.md):
#  - setup cost per container (namespace, veth pair on the bridge, address, routes),
#    berth over rtnetlink vs the same plumbing with `ip` commands in a shell script;
#  - TCP throughput between two berth containers through the bridge vs a bare veth
#    pair between two namespaces (iperf3).
# Everything runs in network namespaces the benchmark creates. Needs root, nftables,
# iperf3 and busybox-static (scripts/test installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release -q -p berth-init --test net -- --ignored --nocapture --test-threads 1 measure_ 2>&1 \
  | grep -E "network setup|TCP throughput|FAILED|panicked"
