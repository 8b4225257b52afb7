#!/usr/bin/env bash
# The main job on an example that needs no container engine: build kerblam and its plugins, then
# package the `process` pipe of a copy of examples/process (in target/demo/process, so the example
# stays clean) with the tarball backend.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

run() {
    echo "+ $*" >&2
    "$@"
}

demo=target/demo/process
run cargo build --workspace --quiet
rm -rf "$demo" && mkdir -p "$(dirname "$demo")" && cp -R examples/process "$demo"
run ./target/debug/kerblam -C "$demo" validate
run ./target/debug/kerblam -C "$demo" plan process --backend tarball -o "$demo/process.plan.json"
run ./target/debug/kerblam -C "$demo" plan process --backend tarball --check "$demo/process.plan.json"
run ./target/debug/kerblam -C "$demo" package process --backend tarball
run tar -tvf "$demo/process.kerblam.tar"
echo "replay it with: ./target/debug/kerblam replay $demo/process.kerblam.tar DEST (needs docker or podman and the image built from $demo/process.context.tar)" >&2
