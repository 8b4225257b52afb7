#!/usr/bin/env bash
# Build kerblam and its first-party backend plugins (release) and install them as:
#   PREFIX/bin/kerblam
#   PREFIX/lib/kerblam/backends/libkerblam_backend_{docker,podman,apptainer,tarball}.so
# kerblam finds the plugins through <exe dir>/../lib/kerblam/backends, so the prefix is relocatable.
# Usage: scripts/install.sh [PREFIX]     (default: $HOME/.local)
# KERBLAM_INSTALL_PROFILE=debug installs a debug build instead (what the test suite checks).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

prefix="${1:-$HOME/.local}"
backends=(docker podman apptainer tarball)

profile="${KERBLAM_INSTALL_PROFILE:-release}"
case "$profile" in
release) args=(build --release --locked -p kerblam) ;;
debug) args=(build --locked -p kerblam) ;;
*) echo "install.sh: KERBLAM_INSTALL_PROFILE must be release or debug, not $profile" >&2; exit 2 ;;
esac
for b in "${backends[@]}"; do args+=(-p "kerblam-backend-$b"); done
echo "+ cargo ${args[*]}" >&2
cargo "${args[@]}"

target="${CARGO_TARGET_DIR:-target}/$profile"
install -d "$prefix/bin" "$prefix/lib/kerblam/backends"
# Install under a temporary name, then rename, so a running kerblam never sees a half-written file.
put() { # put SRC DEST MODE
    install -m "$3" "$1" "$2.tmp-$$"
    mv -f "$2.tmp-$$" "$2"
}
put "$target/kerblam" "$prefix/bin/kerblam" 0755
for b in "${backends[@]}"; do
    lib="libkerblam_backend_$b.so"
    put "$target/$lib" "$prefix/lib/kerblam/backends/$lib" 0644
done
echo "installed $prefix/bin/kerblam and ${#backends[@]} backends in $prefix/lib/kerblam/backends" >&2
"$prefix/bin/kerblam" backends >&2
