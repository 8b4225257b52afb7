#!/usr/bin/env bash
# Build kerblam and its first-party backend plugins (release) and install them as:
#   PREFIX/bin/kerblam
#   PREFIX/lib/kerblam/backends/libkerblam_backend_{docker,podman,apptainer,tarball}.so
# kerblam finds the plugins through <exe dir>/../lib/kerblam/backends, so the prefix is relocatable.
# Installed files are stripped of debug info (kerblam copies itself into every image it packages);
# the debug info goes to a separate file beside each, in a .debug directory, named by the file's
# .gnu_debuglink section, where backtraces and gdb find it:
#   PREFIX/bin/.debug/kerblam.debug
#   PREFIX/lib/kerblam/backends/.debug/libkerblam_backend_{docker,...}.so.debug
# Without objcopy (binutils) the files are installed as built, and the script says so.
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
strip=yes
if ! command -v objcopy >/dev/null; then
    echo "install.sh: objcopy (binutils) not found: installing with debug info, not stripped" >&2
    strip=no
fi
# Install under a temporary name, then rename, so a running kerblam never sees a half-written file.
put() { # put SRC DEST MODE
    if [ "$strip" = yes ]; then
        local dir debug
        dir="$(dirname "$2")/.debug"
        debug="$dir/$(basename "$2").debug"
        install -d "$dir"
        objcopy --only-keep-debug "$1" "$debug.tmp-$$"
        chmod 0644 "$debug.tmp-$$"
        mv -f "$debug.tmp-$$" "$debug"
        # The link names the debug file and holds its CRC, so it is made from the final file.
        objcopy --strip-debug --add-gnu-debuglink="$debug" "$1" "$2.tmp-$$"
        chmod "$3" "$2.tmp-$$"
    else
        install -m "$3" "$1" "$2.tmp-$$"
    fi
    mv -f "$2.tmp-$$" "$2"
}
put "$target/kerblam" "$prefix/bin/kerblam" 0755
for b in "${backends[@]}"; do
    lib="libkerblam_backend_$b.so"
    put "$target/$lib" "$prefix/lib/kerblam/backends/$lib" 0644
done
echo "installed $prefix/bin/kerblam and ${#backends[@]} backends in $prefix/lib/kerblam/backends" >&2
"$prefix/bin/kerblam" backends >&2
