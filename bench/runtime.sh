#!/bin/sh
# bench/runtime.sh: the runtime benchmarks of BENCHMARKS.md, each against its peer in
# the same run. Needs root. Prints Markdown tables.
#
#  1. Container start: create + start + wait for exit of /bin/true in a new container
#     (new pid, mount, uts, ipc, net and cgroup namespaces, its own cgroup) on the same
#     busybox rootfs directory: `berth run` vs `crun run` vs `runc run` (Debian's),
#     hyperfine -N, RUNS runs each in ROUNDS rounds of 10 warm-ups and RUNS/ROUNDS
#     runs, the order of the three rotating from round to round (with 5 warm-ups in
#     one block, whichever command ran first was ~1 ms slower on an idle machine). Everything runs in a private mount
#     namespace with a pure cgroup2 mount on /sys/fs/cgroup, because crun refuses the
#     hybrid hierarchy of these machines (PLATFORM.md); `linux.resources` is dropped
#     from the OCI config (no CAP_SYS_RESOURCE here) and the cgroup namespace added, so
#     the peers do what berth does.
#  2. Restart latency: SIGKILL of a container's process to its successor running, with
#     backoff 0, against a start by `berth start` (init/tests/up.rs, restart_latency).
#  3. berth's RSS with 10 and 100 idle containers (the release binary: static, see
#     .cargo/config.toml), and its voluntary context switches over 10 s when idle
#     (wake-ups).
#
# Environment: RUNS (default 300), ROUNDS (default 15), IDLE_SECONDS (default 10). The
# issue asks for 100 runs; 300 in 15 rounds (about 20 s) make the ratio steadier on a
# machine whose speed drifts.
# Installs crun, runc, hyperfine and busybox-static with apt-get when missing.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
RUNS=${RUNS:-300}
ROUNDS=${ROUNDS:-15}
IDLE_SECONDS=${IDLE_SECONDS:-10}

say() { printf '%s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
[ "$(id -u)" = 0 ] || { say "bench/runtime.sh must run as root"; exit 1; }
for p in crun runc hyperfine busybox:busybox-static jq bc; do
    cmd=${p%%:*}
    pkg=${p#*:}
    have "$cmd" || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null 2>&1 ||
        { say "cannot install $pkg"; exit 1; }
done

say "building berth (release)"
berth=$(scripts/build-static)

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# ---- 1. container start
rootfs=$work/bundle/rootfs
mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/tmp" "$rootfs/etc"
cp "$(command -v busybox)" "$rootfs/bin/busybox"
ln -s busybox "$rootfs/bin/true"
ln -s busybox "$rootfs/bin/sh"
(cd "$work/bundle" && crun spec)
jq '.process.terminal = false | .process.args = ["/bin/true"] | del(.linux.resources)
    | .linux.namespaces += [{"type": "cgroup"}]' \
    "$work/bundle/config.json" >"$work/bundle/config.new"
mv "$work/bundle/config.new" "$work/bundle/config.json"
cat >"$work/true.kdl" <<EOF
host bench
container t {
    rootfs "$rootfs"
    exec "/bin/true"
    network none
}
EOF

say "container start: $RUNS runs each in $ROUNDS rounds"
# ROUNDS rounds of RUNS/ROUNDS runs, the three commands in a different order each
# round: this machine's speed drifts by 10-20 % within minutes, and one long block per
# command gave whichever ran in a fast minute the advantage (0.45x and 0.51x of crun
# for the same binaries, 10 minutes apart).
unshare -m sh -c '
    set -e
    mount --make-rprivate /
    mount -t cgroup2 none /sys/fs/cgroup
    per=$1 work=$2 berth=$3 rounds=$4
    b="$berth run --state-dir $work/state $work/true.kdl t"
    c="crun run --bundle $work/bundle berth-bench"
    r="runc run --bundle $work/bundle berth-bench"
    : >"$work/start.tsv"
    i=0
    while [ "$i" -lt "$rounds" ]; do
        case $((i % 3)) in
        0) set -- -n "berth run" "$b" -n "crun run" "$c" -n "runc run" "$r" ;;
        1) set -- -n "crun run" "$c" -n "runc run" "$r" -n "berth run" "$b" ;;
        2) set -- -n "runc run" "$r" -n "berth run" "$b" -n "crun run" "$c" ;;
        esac
        hyperfine -N -w 10 -r "$per" --export-json "$work/round.json" "$@" >&2
        jq -r ".results[] | .command as \$c | .times[] | \"\\(\$c)\t\\(.)\"" \
            "$work/round.json" >>"$work/start.tsv"
        i=$((i + 1))
    done
' sh "$((RUNS / ROUNDS))" "$work" "$berth" "$ROUNDS"

# mean, sd and median in ms of one command's runs
stats() {
    grep -F "$1	" "$work/start.tsv" | cut -f2 | sort -g | awk '
        { t[NR] = $1 * 1000; s += t[NR] }
        END {
            m = s / NR
            for (i = 1; i <= NR; i++) v += (t[i] - m) ^ 2
            med = NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
            printf "%.3f %.3f %.3f %d\n", m, sqrt(v / (NR - 1)), med, NR
        }'
}
set -- $(stats "crun run")
crun_mean=$1 crun_median=$3
echo "### Container start (create + start + wait, /bin/true, $RUNS runs in $ROUNDS rounds)"
echo
echo "| Runtime | mean ± sd | median | runs | vs crun (mean) | vs crun (median) |"
echo "|---|---:|---:|---:|---:|---:|"
for n in "berth run" "crun run" "runc run"; do
    set -- $(stats "$n")
    printf '| %s | %.2f ms ± %.2f | %.2f ms | %d | %.2f× | %.2f× |\n' "$n" "$1" "$2" "$3" "$4" \
        "$(echo "$1 / $crun_mean" | bc -l)" "$(echo "$3 / $crun_median" | bc -l)"
done
echo

# ---- 2. restart latency
say "restart latency"
echo "### Restart latency (50 rounds)"
echo
cargo test --release -q -p berth-init --test up -- --ignored --nocapture restart_latency 2>/dev/null |
    grep -E '^(restart after|start by)' | sed 's/^/- /'
echo

# ---- 3. RSS and wake-ups
idle_host() {
    echo "host idle"
    i=1
    while [ "$i" -le "$1" ]; do
        printf 'container c%d {\n    rootfs host\n    network none\n    init #true\n    exec "/bin/busybox" sleep "1000000"\n}\n' "$i"
        i=$((i + 1))
    done
}
echo "### berth up with idle containers"
echo
echo "| Containers | RSS | of which anonymous | file-backed | voluntary switches in ${IDLE_SECONDS} s |"
echo "|---:|---:|---:|---:|---:|"
for n in 10 100; do
    idle_host "$n" >"$work/idle$n.kdl"
    bin=$berth
    for _ in 1 2 3; do
        "$bin" up "$work/idle$n.kdl" --state-dir "$work/up" --socket "$work/up.sock" 2>/dev/null &
        pid=$!
        # every container running
        i=0
        while [ "$("$bin" status --socket "$work/up.sock" --json 2>/dev/null |
            jq '[.[] | select(.state == "running")] | length' 2>/dev/null || echo 0)" != "$n" ]; do
            i=$((i + 1))
            [ "$i" -lt 600 ] || { say "containers did not start"; kill "$pid"; exit 1; }
            sleep 0.1
        done
        sleep 1
        v0=$(awk '/^voluntary_ctxt_switches/ {print $2}' /proc/$pid/status)
        sleep "$IDLE_SECONDS"
        v1=$(awk '/^voluntary_ctxt_switches/ {print $2}' /proc/$pid/status)
        rss=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status)
        anon=$(awk '/^RssAnon/ {print $2}' /proc/$pid/status)
        file=$(awk '/^RssFile/ {print $2}' /proc/$pid/status)
        printf '| %d | %.2f MiB | %.2f MiB | %.2f MiB | %d |\n' "$n" \
            "$(echo "$rss / 1024" | bc -l)" "$(echo "$anon / 1024" | bc -l)" \
            "$(echo "$file / 1024" | bc -l)" "$((v1 - v0))"
        "$bin" down --socket "$work/up.sock" >/dev/null
        wait "$pid" || true
    done
done
