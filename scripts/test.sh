#!/usr/bin/env bash
# The test command of CI (.ci/run). Engine tests skip unless KERBLAM_REQUIRE_ENGINES=1 (then they must
# find docker and podman running: `bash scripts/engines.sh start`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

run() {
    echo "+ $*" >&2
    "$@"
}

run cargo build --workspace
run cargo test --workspace
# The fuzz targets live outside the workspace and are run by hand (scripts/fuzz.sh); compile them
# here so they cannot rot unseen.
run cargo check --manifest-path fuzz/Cargo.toml --bins
