#!/usr/bin/env bash
#? Upper-case the precious input
set -euo pipefail
mkdir -p data/out
tr '[:lower:]' '[:upper:]' < data/in/precious.txt > data/out/shout.txt
