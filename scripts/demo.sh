#!/usr/bin/env bash
# The main job on an example that needs no container engine: build kerblam and its plugins, then
# package the `process` pipe of examples/process with the tarball backend.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

run() {
    echo "+ $*" >&2
    "$@"
}

run cargo build --workspace --quiet
run ./target/debug/kerblam -C examples/process validate
run ./target/debug/kerblam -C examples/process plan process --backend tarball -o "${TMPDIR:-/tmp}/process.plan.json"
run ./target/debug/kerblam -C examples/process package process --backend tarball --force
run tar -tvf examples/process/process.kerblam.tar
