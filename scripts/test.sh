#!/usr/bin/env bash
# The test command of CI (.ci/run). Engine tests skip unless KERBLAM_REQUIRE_ENGINES=1 (then they must
# find docker and podman running: `bash scripts/engines.sh start`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

run() {
    echo "+ $*" >&2
    "$@"
}

# The citation tests read what kerblam writes back with the tools its users have: ro-crate-py and
# cffconvert, in a venv of their own (pinned; made once). Without PyPI those tests skip and say so
# (they fail instead under KERBLAM_REQUIRE_ENGINES=1).
if [ -z "${KERBLAM_PYTHON:-}" ]; then
    venv=target/test-tools/venv
    if ! "$venv/bin/python" -c 'import rocrate, cffconvert' 2>/dev/null; then
        echo "+ python3 -m venv $venv && pip install rocrate==0.16.0 cffconvert==2.0.0" >&2
        python3 -m venv "$venv" &&
            "$venv/bin/pip" install --quiet --disable-pip-version-check rocrate==0.16.0 cffconvert==2.0.0 ||
            echo "warning: could not install ro-crate-py and cffconvert: the citation tests will skip" >&2
    fi
    export KERBLAM_PYTHON="$PWD/$venv/bin/python"
fi

# tests/it/taplo.rs checks the JSON Schemas with taplo, the engine of the Even Better TOML editor
# extension (npm @taplo/cli, pinned; installed once). Without npm those tests skip and say so (they
# fail instead under KERBLAM_REQUIRE_ENGINES=1).
if [ -z "${KERBLAM_TAPLO:-}" ]; then
    tools=target/test-tools
    if [ ! -x "$tools/node_modules/.bin/taplo" ]; then
        echo "+ npm install --prefix $tools @taplo/cli@0.7.0" >&2
        mkdir -p "$tools" &&
            npm install --prefix "$tools" --no-audit --no-fund --silent @taplo/cli@0.7.0 ||
            echo "warning: could not install taplo (@taplo/cli): the taplo tests will skip" >&2
    fi
    export KERBLAM_TAPLO="$PWD/$tools/node_modules/.bin/taplo"
fi

# cargo machete: no crate declares a dependency it does not use (it reads the sources and `cargo
# metadata`, builds nothing: a few seconds). Pinned; installed once into target/test-tools unless
# cargo-machete is on PATH. Without crates.io the check skips and says so (it fails instead under
# KERBLAM_REQUIRE_ENGINES=1). A false positive goes in [package.metadata.cargo-machete] ignored.
machete=$(command -v cargo-machete || true)
if [ -z "$machete" ]; then
    tools=target/test-tools
    if [ ! -x "$tools/bin/cargo-machete" ]; then
        echo "+ cargo install cargo-machete --version 0.9.2 --locked --root $tools" >&2
        cargo install --quiet cargo-machete --version 0.9.2 --locked --root "$tools" ||
            echo "warning: could not install cargo-machete: the unused-dependency check will skip" >&2
    fi
    machete="$PWD/$tools/bin/cargo-machete"
fi
if [ -x "$machete" ]; then
    run "$machete" --with-metadata --skip-target-dir
elif [ "${KERBLAM_REQUIRE_ENGINES:-}" = 1 ]; then
    echo "error: cargo-machete is required (KERBLAM_REQUIRE_ENGINES=1) and could not be installed" >&2
    exit 1
fi

run cargo build --workspace
run cargo test --workspace
# The fuzz targets live outside the workspace and are run by hand (scripts/fuzz.sh); compile them
# here so they cannot rot unseen.
run cargo check --manifest-path fuzz/Cargo.toml --bins
