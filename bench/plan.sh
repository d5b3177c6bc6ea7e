#!/bin/sh
# bench/plan.sh: the plan benchmark of BENCHMARKS.md ("Plans"), against its peer in the
# same run. Prints a Markdown table.
#
# On `scripts/gen-host 1000` (evaluated in memory): the plan of a no-op switch (the
# same host again) and of a one-container change (c500's memory limit), against the
# evaluation of the same host, which every switch does before it plans
# (init/tests/plan.rs, measure_plan_on_1000_containers). Goal: a no-op plan < 10 ms.
#
# Environment: ROUNDS (default 30).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ROUNDS=${ROUNDS:-30} cargo test --release -q -p berth-init --test plan -- --ignored --nocapture \
    measure_plan_on_1000_containers 2>/dev/null | grep -E '^\|'
