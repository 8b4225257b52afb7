#!/usr/bin/env bash
# The main job on an example that needs no container engine: build kerblam and its plugins (release,
# installed stripped into target/demo/prefix by scripts/install.sh: the kerblam that goes into the
# context archive is the one users install, not a debug build), then package the `process` pipe of
# a copy of examples/process (in target/demo/process, so the example stays clean) with the tarball
# backend.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

run() {
    echo "+ $*" >&2
    "$@"
}

demo=target/demo/process
kerblam=target/demo/prefix/bin/kerblam
run bash scripts/install.sh target/demo/prefix
rm -rf "$demo" && mkdir -p "$(dirname "$demo")" && cp -R examples/process "$demo"
run "$kerblam" -C "$demo" validate
run "$kerblam" -C "$demo" plan process --backend tarball -o "$demo/process.plan.json"
run "$kerblam" -C "$demo" plan process --backend tarball --check "$demo/process.plan.json"
run "$kerblam" -C "$demo" package process --backend tarball
run tar -tvf "$demo/process.kerblam.tar"
run tar -tvf "$demo/process.context.tar" .kerblam/kerblam
echo "replay it with: $kerblam replay $demo/process.kerblam.tar DEST (needs docker or podman and the image built from $demo/process.context.tar)" >&2
