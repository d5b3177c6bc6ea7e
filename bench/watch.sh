#!/bin/sh
# bench/watch.sh: the watching benchmark of BENCHMARKS.md ("Watching"), against its
# peer in the same run. Needs root. Prints a Markdown table.
#
# From saving the host file (an editor's save: write a temporary file, rename it over
# the old one) to a `live` change (one container's memory limit) being applied:
#   - under `berth up --watch` (inotify, 50 ms debounce, evaluate, plan, switch), until
#     berth's log says `switched to generation N`, polled every millisecond;
#   - the peer: the same save followed by `berth switch FILE` to a berth without
#     --watch, until the command returns.
# The two berths (three idle containers each) run side by side and the rounds alternate
# (init/tests/watch.rs, watch_latency). Goal: watch < 200 ms.
#
# Environment: ROUNDS (default 30).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "$(id -u)" = 0 ] || { echo "bench/watch.sh must run as root" >&2; exit 1; }
command -v busybox >/dev/null 2>&1 || [ -x /bin/busybox ] ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null 2>&1 ||
    { echo "cannot install busybox-static" >&2; exit 1; }

echo "### Save to applied (\`live\` change, ROUNDS=${ROUNDS:-30})"
echo
ROUNDS=${ROUNDS:-30} cargo test --release -q -p berth-init --test watch -- --ignored --nocapture \
    watch_latency 2>/dev/null | grep -E '^(\||ratio)'
