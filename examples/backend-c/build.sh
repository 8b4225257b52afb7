#!/bin/sh
# Builds the cbuild backend plugin, libkerblam_backend_cbuild.so, with cc alone (no third-party
# library), next to this script or into OUTDIR. Works from any directory:
#   sh examples/backend-c/build.sh [OUTDIR]
# CC and CFLAGS may be overridden, e.g. CC=clang or CFLAGS='-O0 -g' (for valgrind).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$here"
${CC:-cc} -std=c11 -Wall -Wextra -Werror ${CFLAGS:--O2} -shared -fPIC \
    -I ../../contract/api/include -o "$out/libkerblam_backend_cbuild.so" \
    json.c request.c render.c preflight.c kerblam_backend_cbuild.c
echo "built $out/libkerblam_backend_cbuild.so"
