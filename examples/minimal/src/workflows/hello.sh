#!/usr/bin/env bash
#? Say hello into the output directory
set -euo pipefail
mkdir -p data/out
echo "hello from a minimal project" > data/out/hello.txt
