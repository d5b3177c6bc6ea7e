#!/bin/sh
# bench/eval.sh: end-to-end evaluation benchmark.
#
# Builds berth --release, generates hosts of 1,000, 10,000 and 100,000 containers with
# scripts/gen-host, and measures `berth eval FILE --json > /dev/null` and
# `berth check FILE` at each size: mean wall time (hyperfine with warm-up when
# available, else a timed loop), CPU time (user + sys), the 100k/10k ratio, and peak
# RSS (GNU time). Prints a Markdown table ready for BENCHMARKS.md.
#
# With BASELINE=/path/to/an/older/berth, the same measurements are made for that binary
# in the same run (interleaved per size, same hosts), and a before/after table follows:
# on a shared machine only a comparison within one run is fair.
#
# Environment (all optional):
#   RUNS_1K    runs at 1k    (default 20, after 3 warm-up runs)
#   RUNS_10K   runs at 10k   (default 10, after 3 warm-up runs)
#   RUNS_100K  runs at 100k  (default 5, after 1 warm-up run)
#   BERTH      use this binary instead of building the release berth
#   BASELINE   also measure this binary, for a before/after table
#   KEEP=1     keep the generated hosts (their directory is printed)
#   NO_HYPERFINE=1  time with a date +%s%N loop even if hyperfine is installed
#
# Installs hyperfine and GNU time with apt-get when missing and running as root.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

RUNS_1K=${RUNS_1K:-20}
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
    bin=$(scripts/build-static --quiet)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
    say "hosts kept in $tmp"
else
    trap 'rm -rf "$tmp"' EXIT INT TERM
fi

for n in 1000 10000 100000; do
    "$root/scripts/gen-host" "$n" >"$tmp/h$n.kdl"
    "$bin" check "$tmp/h$n.kdl" >/dev/null || { say "gen-host $n is not a valid host"; exit 1; }
done

# measure BIN VERB N RUNS WARMUP: sets mean, sd and min (seconds, wall) and cpu
# (seconds, user + sys, mean over the runs) of `BIN eval FILE --json` (VERB eval) or
# `BIN check FILE` (VERB check).
measure() {
    file=$tmp/h$3.kdl
    if [ "$2" = eval ]; then args="eval $file --json"; else args="check $file"; fi
    if [ "$use_hf" = 1 ]; then
        hyperfine --style basic -N --output=null --warmup "$5" --runs "$4" \
            --export-csv "$tmp/r.csv" "$1 $args" >&2
        # command,mean,stddev,median,user,system,min,max
        set -- $(awk -F, 'NR == 2 { print $2, $3, $7, $5 + $6 }' "$tmp/r.csv")
    else
        i=0
        while [ "$i" -lt "$5" ]; do $1 $args >/dev/null; i=$((i + 1)); done
        : >"$tmp/r.txt"
        n=$4
        i=0
        while [ "$i" -lt "$n" ]; do
            t0=$(date +%s%N)
            /usr/bin/time -f '%U %S' -o "$tmp/cpu" $1 $args >/dev/null
            t1=$(date +%s%N)
            echo "$((t1 - t0)) $(tail -n 1 "$tmp/cpu")" >>"$tmp/r.txt"
            i=$((i + 1))
        done
        set -- $(awk '
            NR == 1 || $1 < lo { lo = $1 }
            { s += $1; q += $1 * $1; c += $2 + $3 }
            END { m = s / NR; v = NR > 1 ? (q - NR * m * m) / (NR - 1) : 0; if (v < 0) v = 0
                  printf "%.6f %.6f %.6f %.6f\n", m / 1e9, sqrt(v) / 1e9, lo / 1e9, c / NR }' "$tmp/r.txt")
    fi
    mean=$1 sd=$2 min=$3 cpu=$4
}

# peak_rss BIN N: max resident set size in KiB of `eval --json` over 3 runs.
peak_rss() {
    best=0
    for _ in 1 2 3; do
        /usr/bin/time -f '%M' -o "$tmp/rss" $1 eval "$tmp/h$2.kdl" --json >/dev/null
        kb=$(tail -n 1 "$tmp/rss")
        [ "$kb" -gt "$best" ] && best=$kb
    done
    echo "$best"
}

# One line per (binary, verb, size): "who verb n mean sd min cpu".
: >"$tmp/results"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for n in 1000 10000 100000; do
    case $n in
    1000) runs=$RUNS_1K warm=3 ;;
    10000) runs=$RUNS_10K warm=3 ;;
    *) runs=$RUNS_100K warm=1 ;;
    esac
    for verb in eval check; do
        for who in new old; do
            if [ "$who" = old ]; then b=${BASELINE:-}; else b=$bin; fi
            [ -n "$b" ] || continue
            say "timing $who $verb $n ($runs runs)"
            measure "$b" "$verb" "$n" "$runs" "$warm"
            echo "$who $verb $n $mean $sd $min $cpu" >>"$tmp/results"
        done
    done
done
say "peak RSS"
for n in 1000 10000 100000; do
    echo "new rss $n $(peak_rss "$bin" "$n")" >>"$tmp/results"
    [ -z "${BASELINE:-}" ] || echo "old rss $n $(peak_rss "$BASELINE" "$n")" >>"$tmp/results"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

tool=$(if [ "$use_hf" = 1 ]; then hyperfine --version; else echo "a date +%s%N loop"; fi)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
rustc_v=$(rustc --version 2>/dev/null || echo "rustc unknown")

awk -v g10="$GOAL_10K_MS" -v gr="$GOAL_RATIO" -v r1="$RUNS_1K" -v r10="$RUNS_10K" -v r100="$RUNS_100K" -v tool="$tool" \
    -v nproc="$(nproc)" -v cpu_model="$cpu_model" -v kernel="$(uname -r)" -v rustc_v="$rustc_v" \
    -v lb="$load_before" -v la="$load_after" \
    -v s1="$(wc -c <"$tmp/h1000.kdl")" -v s10="$(wc -c <"$tmp/h10000.kdl")" -v s100="$(wc -c <"$tmp/h100000.kdl")" '
function ms(s) { return sprintf("%.1f ms", s * 1000) }
function ok(b) { return b ? "**met**" : "**not met**" }
{ k = $1 " " $2 " " $3; mean[k] = $4; sd[k] = $5; lo[k] = $6; cpu[k] = $7; if ($2 == "rss") rss[$1 " " $3] = $4; if ($1 == "old") old = 1 }
function rows(who, label,   e1, e10, e100, c1, c10, c100) {
    e1 = who " eval 1000"; e10 = who " eval 10000"; e100 = who " eval 100000"
    c1 = who " check 1000"; c10 = who " check 10000"; c100 = who " check 100000"
    printf "| %s`berth eval FILE --json`, mean wall ± sd | %s ± %s | %s ± %s | %s ± %s | %.2f× | 10k < %d ms, ratio ≤ %d× | %s, %s |\n", label, \
        ms(mean[e1]), ms(sd[e1]), ms(mean[e10]), ms(sd[e10]), ms(mean[e100]), ms(sd[e100]), mean[e100] / mean[e10], g10, gr, \
        ok(mean[e10] * 1000 < g10), ok(mean[e100] / mean[e10] <= gr)
    printf "| %ssame, fastest run | %s | %s | %s | %.2f× | | |\n", label, ms(lo[e1]), ms(lo[e10]), ms(lo[e100]), lo[e100] / lo[e10]
    printf "| %ssame, CPU time (user + sys), mean | %s | %s | %s | %.2f× | | |\n", label, ms(cpu[e1]), ms(cpu[e10]), ms(cpu[e100]), cpu[e100] / cpu[e10]
    printf "| %s`berth check FILE`, mean wall ± sd | %s ± %s | %s ± %s | %s ± %s | %.2f× | | |\n", label, \
        ms(mean[c1]), ms(sd[c1]), ms(mean[c10]), ms(sd[c10]), ms(mean[c100]), ms(sd[c100]), mean[c100] / mean[c10]
    printf "| %ssame, CPU time (user + sys), mean | %s | %s | %s | %.2f× | | |\n", label, ms(cpu[c1]), ms(cpu[c10]), ms(cpu[c100]), cpu[c100] / cpu[c10]
    printf "| %sPeak RSS of `eval --json` | %.1f MiB | %.1f MiB | %.1f MiB | %.2f× | | |\n", label, \
        rss[who " 1000"] / 1024, rss[who " 10000"] / 1024, rss[who " 100000"] / 1024, rss[who " 100000"] / rss[who " 10000"]
}
END {
    printf "Machine: %d CPUs, %s, Linux %s, %s. Load average %s before, %s after.\n", nproc, cpu_model, kernel, rustc_v, lb, la
    printf "Tool: %s; %d runs at 1k and %d at 10k (3 warm-up), %d runs at 100k (1 warm-up); peak RSS by GNU time, max of 3 runs.\n\n", tool, r1, r10, r100
    print "| Measure | 1k containers | 10k containers | 100k containers | 100k / 10k | Goal | Status |"
    print "|---|---:|---:|---:|---:|---|---|"
    printf "| Host file size | %.2f MB | %.1f MB | %.1f MB | %.2f× | | |\n", s1 / 1e6, s10 / 1e6, s100 / 1e6, s100 / s10
    rows("new", old ? "after: " : "")
    if (old) {
        rows("old", "before: ")
        print ""
        print "| 10k containers | before | after | after / before |"
        print "|---|---:|---:|---:|"
        printf "| `eval --json`, mean wall | %s | %s | %.2f× |\n", ms(mean["old eval 10000"]), ms(mean["new eval 10000"]), mean["new eval 10000"] / mean["old eval 10000"]
        printf "| `eval --json`, CPU time | %s | %s | %.2f× |\n", ms(cpu["old eval 10000"]), ms(cpu["new eval 10000"]), cpu["new eval 10000"] / cpu["old eval 10000"]
        printf "| `check`, mean wall | %s | %s | %.2f× |\n", ms(mean["old check 10000"]), ms(mean["new check 10000"]), mean["new check 10000"] / mean["old check 10000"]
        printf "| `check`, CPU time | %s | %s | %.2f× |\n", ms(cpu["old check 10000"]), ms(cpu["new check 10000"]), cpu["new check 10000"] / cpu["old check 10000"]
        printf "| peak RSS, `eval --json` | %.1f MiB | %.1f MiB | %.2f× |\n", rss["old 10000"] / 1024, rss["new 10000"] / 1024, rss["new 10000"] / rss["old 10000"]
    }
}' "$tmp/results"
