#!/usr/bin/env bash
#? List the input files (uses default.dockerfile)
set -euo pipefail
mkdir -p data/out
ls data/in > data/out/listing.txt
