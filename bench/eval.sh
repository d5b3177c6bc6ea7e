#!/bin/sh
# bench/eval.sh: end-to-end evaluation benchmark.
#
# Builds berth --release, generates hosts of 10,000 and 100,000 containers with
# scripts/gen-host, and measures `berth eval FILE --json > /dev/null`: mean wall time
# (hyperfine with warm-up when available, else a timed loop), CPU time, the 100k/10k
# ratio, and peak RSS (GNU time). Prints a Markdown table ready for BENCHMARKS.md.
#
# Environment (all optional):
#   RUNS_10K   runs at 10k   (default 10, after 3 warm-up runs)
#   RUNS_100K  runs at 100k  (default 5, after 1 warm-up run)
#   BERTH      use this binary instead of building target/release/berth
#   KEEP=1     keep the generated hosts (their directory is printed)
#   NO_HYPERFINE=1  time with a date +%s%N loop even if hyperfine is installed
#
# Installs hyperfine and GNU time with apt-get when missing and running as root.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

RUNS_10K=${RUNS_10K:-10}
RUNS_100K=${RUNS_100K:-5}
GOAL_10K_MS=100
GOAL_RATIO=12

say() { printf '%s\n' "$*" >&2; }

have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
    if [ "$(id -u)" = 0 ] && have apt-get; then
        say "installing $1 with apt-get"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null 2>&1; } ||
            say "could not install $1"
    fi
}

use_hf=0
if [ "${NO_HYPERFINE:-0}" != 1 ]; then
    have hyperfine || apt_install hyperfine
    have hyperfine && use_hf=1
fi
[ -x /usr/bin/time ] || apt_install time
[ -x /usr/bin/time ] || { say "GNU time (/usr/bin/time) is required for peak RSS"; exit 1; }

if [ -n "${BERTH:-}" ]; then
    bin=$BERTH
else
    say "building berth --release"
    cargo build --release --quiet --bin berth
    bin=$root/target/release/berth
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    say "hosts kept in $tmp"
else
    trap 'rm -rf "$tmp"' EXIT INT TERM
fi

for n in 10000 100000; do
    "$root/scripts/gen-host" "$n" >"$tmp/h$n.kdl"
    "$bin" check "$tmp/h$n.kdl" >/dev/null || { say "gen-host $n is not a valid host"; exit 1; }
done

# measure N RUNS WARMUP: sets mean, sd and min (seconds, wall) and cpu (seconds,
# user + sys, mean over the runs).
measure() {
    file=$tmp/h$1.kdl
    if [ "$use_hf" = 1 ]; then
        hyperfine --style basic -N --output=null --warmup "$3" --runs "$2" \
            --export-csv "$tmp/r$1.csv" "$bin eval $file --json" >&2
        # command,mean,stddev,median,user,system,min,max
        set -- $(awk -F, 'NR == 2 { print $2, $3, $7, $5 + $6 }' "$tmp/r$1.csv")
    else
        i=0
        while [ "$i" -lt "$3" ]; do "$bin" eval "$file" --json >/dev/null; i=$((i + 1)); done
        : >"$tmp/r$1.txt"
        i=0
        while [ "$i" -lt "$2" ]; do
            t0=$(date +%s%N)
            /usr/bin/time -f '%U %S' -o "$tmp/cpu" "$bin" eval "$file" --json >/dev/null
            t1=$(date +%s%N)
            echo "$((t1 - t0)) $(tail -n 1 "$tmp/cpu")" >>"$tmp/r$1.txt"
            i=$((i + 1))
        done
        say "$(awk '{ printf "  run %d: %.1f ms wall\n", NR, $1 / 1e6 }' "$tmp/r$1.txt")"
        set -- $(awk '
            NR == 1 || $1 < lo { lo = $1 }
            { s += $1; q += $1 * $1; c += $2 + $3 }
            END { m = s / NR; v = NR > 1 ? (q - NR * m * m) / (NR - 1) : 0; if (v < 0) v = 0
                  printf "%.6f %.6f %.6f %.6f\n", m / 1e9, sqrt(v) / 1e9, lo / 1e9, c / NR }' "$tmp/r$1.txt")
    fi
    mean=$1 sd=$2 min=$3 cpu=$4
}

# peak_rss N: max resident set size in KiB over 3 runs.
peak_rss() {
    best=0
    for _ in 1 2 3; do
        /usr/bin/time -f '%M' -o "$tmp/rss" "$bin" eval "$tmp/h$1.kdl" --json >/dev/null
        kb=$(tail -n 1 "$tmp/rss")
        [ "$kb" -gt "$best" ] && best=$kb
    done
    echo "$best"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "timing 10k ($RUNS_10K runs)"
measure 10000 "$RUNS_10K" 3
m10=$mean sd10=$sd min10=$min cpu10=$cpu
say "timing 100k ($RUNS_100K runs)"
measure 100000 "$RUNS_100K" 1
m100=$mean sd100=$sd min100=$min cpu100=$cpu
say "peak RSS"
rss10=$(peak_rss 10000)
rss100=$(peak_rss 100000)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

size10=$(wc -c <"$tmp/h10000.kdl")
size100=$(wc -c <"$tmp/h100000.kdl")
tool=$(if [ "$use_hf" = 1 ]; then hyperfine --version; else echo "a date +%s%N loop"; fi)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
rustc_v=$(rustc --version 2>/dev/null || echo "rustc unknown")

awk -v m10="$m10" -v sd10="$sd10" -v min10="$min10" -v cpu10="$cpu10" \
    -v m100="$m100" -v sd100="$sd100" -v min100="$min100" -v cpu100="$cpu100" \
    -v rss10="$rss10" -v rss100="$rss100" -v s10="$size10" -v s100="$size100" \
    -v g10="$GOAL_10K_MS" -v gr="$GOAL_RATIO" -v r10="$RUNS_10K" -v r100="$RUNS_100K" -v tool="$tool" \
    -v nproc="$(nproc)" -v cpu_model="$cpu_model" -v kernel="$(uname -r)" -v rustc_v="$rustc_v" \
    -v lb="$load_before" -v la="$load_after" '
function ms(s) { return sprintf("%.1f ms", s * 1000) }
function ok(b) { return b ? "**met**" : "**not met**" }
BEGIN {
    printf "Machine: %d CPUs, %s, Linux %s, %s. Load average %s before, %s after.\n", nproc, cpu_model, kernel, rustc_v, lb, la
    printf "Tool: %s; %d runs at 10k (3 warm-up), %d runs at 100k (1 warm-up); peak RSS by GNU time, max of 3 runs.\n\n", tool, r10, r100
    print "| Measure | 10k containers | 100k containers | 100k / 10k | Goal | Status |"
    print "|---|---:|---:|---:|---|---|"
    printf "| Host file size | %.1f MB | %.1f MB | %.2f× | | |\n", s10 / 1e6, s100 / 1e6, s100 / s10
    printf "| `berth eval FILE --json`, mean wall ± sd | %s ± %s | %s ± %s | %.2f× | 10k < %d ms, ratio ≤ %d× | %s, %s |\n", \
        ms(m10), ms(sd10), ms(m100), ms(sd100), m100 / m10, g10, gr, ok(m10 * 1000 < g10), ok(m100 / m10 <= gr)
    printf "| same, fastest run | %s | %s | %.2f× | | |\n", ms(min10), ms(min100), min100 / min10
    printf "| same, CPU time (user + sys), mean | %s | %s | %.2f× | | |\n", ms(cpu10), ms(cpu100), cpu100 / cpu10
    printf "| Peak RSS | %.1f MiB | %.1f MiB | %.2f× | | |\n", rss10 / 1024, rss100 / 1024, rss100 / rss10
}'
