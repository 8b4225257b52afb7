#!/usr/bin/env bash
# Fuzzing, by hand (not part of CI nor of scripts/test.sh):
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Builds the cargo-fuzz targets of fuzz/ (libFuzzer, no sanitizer, debug assertions and overflow
# checks on), seeds each corpus from the repository (test fixtures, examples, golden plans, plan
# snapshots, archives written by kerblam-archive's ReplayWriter and the hostile-archive corpus, the
# text seeds under fuzz/seeds/; dictionaries of tokens in fuzz/dicts/), then runs every target (or the TARGETs named) for SECONDS each
# (default 120) with one job, and prints the executions of each. A crash stops that target: its input
# is saved under fuzz/artifacts/<target>/ and the script exits 1 at the end.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). It runs on a stable toolchain: RUSTC_BOOTSTRAP=1
# lets stable rustc take the -Z flags cargo-fuzz passes. Logs go to fuzz/logs/<target>.log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-120}
shift || true
export RUSTC_BOOTSTRAP=1
flags=(--sanitizer none --debug-assertions)

run() {
    echo "+ $*" >&2
    "$@"
}

command -v cargo-fuzz >/dev/null || {
    echo "error: cargo-fuzz is not installed; run: cargo install cargo-fuzz" >&2
    exit 2
}
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

run cargo fuzz build "${flags[@]}"

# --- seeds ---
corpus=fuzz/corpus
mkdir -p "$corpus"/{manifest,freeze_spec,plan_json,plugin_reply,replay_archive} fuzz/logs
seed() { # seed TARGET FILE...
    local t=$1
    shift
    for f in "$@"; do cp "$f" "$corpus/$t/seed-$(basename "$f")"; done
}
seed manifest tests/fixtures/valid/*.toml tests/fixtures/invalid/*.toml examples/*/kerblam.toml
seed freeze_spec examples/freeze/freeze.toml fuzz/seeds/freeze_spec/*
seed plan_json contract/conformance/golden/*.json fuzz/seeds/plan_json/*
# `kerblam plan` of the examples, as snapshotted by tests/it/plan_cli.rs: after insta's front matter,
# one `==== <pipe>.plan.json ====` section per plan.
awk -v dir="$corpus/plan_json" '
    FNR == 1 { fm = 0; if (out) close(out); out = "" }
    /^---$/ { fm++; next }
    fm < 2 { next }
    /^=+ .* =+$/ { if (out) close(out); out = dir "/seed-" $2; next }
    out { print > out }
' tests/it/snapshots/it__plan_cli__plan_*.snap
seed plugin_reply fuzz/seeds/plugin_reply/*
archives=$(mktemp -d)
trap 'rm -rf "$archives"' EXIT
run cargo run -q -p kerblam-archive --example fuzz_seeds -- "$archives/written" >/dev/null
KERBLAM_FUZZ_SEEDS="$archives/hostile" run cargo test -q -p kerblam-archive --test it \
    hostile::export_the_corpus_as_fuzz_seeds >/dev/null
for f in "$archives"/written/* "$archives"/hostile/*; do
    # Mode byte 0: the rest of the input is the archive file as it is.
    { printf '\0'; cat "$f"; } >"$corpus/replay_archive/seed-$(basename "$(dirname "$f")")-$(basename "$f")"
done

# --- runs ---
status=0
summary=()
for t in "${targets[@]}"; do
    log=fuzz/logs/$t.log
    dict=()
    case $t in
        manifest | freeze_spec) dict=(-dict=fuzz/dicts/toml.dict) ;;
        plan_json | plugin_reply) dict=(-dict=fuzz/dicts/json.dict) ;;
    esac
    echo "fuzzing $t for ${seconds}s (log: $log)" >&2
    if cargo fuzz run "${flags[@]}" "$t" -- -max_total_time="$seconds" "${dict[@]}" \
        -print_final_stats=1 -timeout=20 -rss_limit_mb=2048 >"$log" 2>&1; then
        result=ok
    else
        result="CRASH ($(grep -o 'fuzz/artifacts/[^ ]*' "$log" | tail -1))"
        status=1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    summary+=("$(printf '%-16s %12s executions  %s' "$t" "${execs:-?}" "$result")")
done
printf '%s\n' "${summary[@]}"
exit $status
