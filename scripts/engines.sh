#!/usr/bin/env bash
# Container engines for kerblam's tests and CI: install, start, and build the local base image.
#
# Usage:
#   bash scripts/engines.sh install                 # apt-get docker.io podman uidmap busybox-static ... umoci make (idempotent)
#   bash scripts/engines.sh start                   # start dockerd (no bridge), configure podman, and a second dockerd and a podman service for the remote-engine tests (idempotent)
#   bash scripts/engines.sh base-image [BINARY...]  # import kerblam-test-base:latest into docker and podman
#
# Environment:
#   KERBLAM_BASE_ENGINES   engines to import the base image into (default: "docker podman", those that run)
#   KERBLAM_DOCKER, KERBLAM_PODMAN  engine programs (default: docker, podman)
#   KERBLAM_BASE_TAG       tag of the base image (default: kerblam-test-base:latest)
#   KERBLAM_DOCKERD_LOG    dockerd log file (default: /var/log/kerblam-dockerd.log)
#   KERBLAM_ENGINE_WAIT    seconds to wait for `docker info` after starting dockerd (default: 60)
#
# Tests pull nothing from the internet: the base image is a root
# filesystem made of busybox-static (with applet symlinks), the host's bash and make, and every shared
# library `ldd` lists for them and for the BINARY arguments (the kerblam executable). Layout is merged-/usr
# like Debian (bin -> usr/bin, lib -> usr/lib, lib64 -> usr/lib64, sbin -> usr/sbin).
#
# Engine facts (what the backends and this script rely on, measured per engine version) are in
# docs/engines.md.
set -Eeuo pipefail
trap 'echo "engines.sh: error: \`$BASH_COMMAND\` failed (exit $?) at line $LINENO" >&2' ERR

BASE_TAG="${KERBLAM_BASE_TAG:-kerblam-test-base:latest}"
DOCKERD_LOG="${KERBLAM_DOCKERD_LOG:-/var/log/kerblam-dockerd.log}"
WAIT_SECS="${KERBLAM_ENGINE_WAIT:-60}"
PACKAGES=(docker.io podman uidmap busybox-static squashfs-tools siftool skopeo umoci zstd make docker-registry apache2-utils)
LABEL_KEY="org.kerblam.test-base.rootfs-sha256"

say() { echo "engines.sh: $*" >&2; }
die() {
    echo "engines.sh: error: $*" >&2
    exit 1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

cmd_install() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        # (No `| grep -q`: with pipefail an early grep exit can fail the pipeline via SIGPIPE.)
        if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        say "all packages already installed: ${PACKAGES[*]}"
        return 0
    fi
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update
    as_root apt-get install -y "${missing[@]}"
}

docker_ok() { docker info >/dev/null 2>&1; }

start_docker() {
    command -v dockerd >/dev/null || die "dockerd not found; run: bash scripts/engines.sh install"
    command -v docker >/dev/null || die "docker CLI not found; run: bash scripts/engines.sh install"
    if docker_ok; then
        say "docker is running"
        return 0
    fi
    if [ -s /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        say "dockerd (pid $(cat /var/run/docker.pid)) is starting; waiting"
    else
        say "starting dockerd (no bridge), log: $DOCKERD_LOG"
        mkdir -p "$(dirname "$DOCKERD_LOG")"
        # setsid: the daemon must outlive this script and not get the caller's signals.
        as_root setsid dockerd --bridge=none --iptables=false --ip-masq=false \
            >>"$DOCKERD_LOG" 2>&1 </dev/null &
    fi
    local i
    for ((i = 0; i < WAIT_SECS; i++)); do
        if docker_ok; then
            say "docker is running ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
            return 0
        fi
        sleep 1
    done
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    die "docker did not answer 'docker info' within ${WAIT_SECS}s; see $DOCKERD_LOG (tail above)"
}

configure_podman() {
    command -v podman >/dev/null || die "podman not found; run: bash scripts/engines.sh install"
    local conf=/etc/containers/containers.conf
    if [ ! -e "$conf" ]; then
        say "writing $conf (default_ulimits, or podman run fails setting rlimits here)"
        as_root mkdir -p /etc/containers
        printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n' |
            as_root tee "$conf.tmp" >/dev/null
        as_root mv "$conf.tmp" "$conf"
    elif ! grep -q default_ulimits "$conf"; then
        say "warning: $conf exists without default_ulimits; podman run may fail setting rlimits"
    fi
    local out
    if ! out=$(podman info 2>&1); then
        echo "$out" | tail -n 20 >&2
        die "'podman info' failed (output above)"
    fi
    say "podman is ready ($(podman version --format '{{.Client.Version}}' 2>/dev/null))"
}

# The remote-engine tests (tests/registry_engines.rs) drive a second dockerd and a podman API
# service through DOCKER_HOST / CONTAINER_HOST, each on a unix socket of its own. Both are on this
# machine; what the tests check is that kerblam builds through the socket and assumes nothing else.
DOCKER2_SOCK=/run/kerblam-docker2.sock
PODMAN_SOCK=/run/kerblam-podman.sock

start_second_docker() {
    if DOCKER_HOST="unix://$DOCKER2_SOCK" docker info >/dev/null 2>&1; then
        say "second dockerd is running on $DOCKER2_SOCK"
        return 0
    fi
    say "starting a second dockerd on $DOCKER2_SOCK (log: /var/log/kerblam-dockerd2.log)"
    as_root setsid dockerd --host "unix://$DOCKER2_SOCK" --data-root /var/lib/kerblam-docker2 \
        --exec-root /run/kerblam-docker2 --pidfile /run/kerblam-docker2.pid \
        --bridge=none --iptables=false --ip-masq=false \
        >>/var/log/kerblam-dockerd2.log 2>&1 </dev/null &
    local i
    for ((i = 0; i < WAIT_SECS; i++)); do
        if DOCKER_HOST="unix://$DOCKER2_SOCK" docker info >/dev/null 2>&1; then
            say "second dockerd is running on $DOCKER2_SOCK"
            return 0
        fi
        sleep 1
    done
    tail -n 30 /var/log/kerblam-dockerd2.log >&2 || true
    die "the second dockerd did not answer within ${WAIT_SECS}s"
}

start_podman_service() {
    if CONTAINER_HOST="unix://$PODMAN_SOCK" podman --remote info >/dev/null 2>&1; then
        say "podman service is running on $PODMAN_SOCK"
        return 0
    fi
    say "starting podman system service on $PODMAN_SOCK (log: /var/log/kerblam-podman-service.log)"
    as_root setsid podman system service --time=0 "unix://$PODMAN_SOCK" \
        >>/var/log/kerblam-podman-service.log 2>&1 </dev/null &
    local i
    for ((i = 0; i < WAIT_SECS; i++)); do
        if CONTAINER_HOST="unix://$PODMAN_SOCK" podman --remote info >/dev/null 2>&1; then
            say "podman service is running on $PODMAN_SOCK"
            return 0
        fi
        sleep 1
    done
    tail -n 30 /var/log/kerblam-podman-service.log >&2 || true
    die "the podman service did not answer within ${WAIT_SECS}s"
}

cmd_start() {
    start_docker
    configure_podman
    start_second_docker
    start_podman_service
}

# Copy one host file into the rootfs at the same path (following symlinks for the content).
put_file() {
    local src="$1" root="$2"
    local dest="$root$src"
    mkdir -p "$(dirname "$dest")"
    cp -L --preserve=mode "$src" "$dest"
}

# Shared libraries (absolute paths) that ldd lists for a binary; nothing for static ones.
libs_of() {
    ldd "$1" 2>/dev/null | awk '
        $2 == "=>" && $3 ~ /^\// { print $3; next }
        $1 ~ /^\// { print $1 }' || true
}

build_rootfs() {
    local root="$1"
    shift
    local busybox bash_bin make_bin
    busybox=$(command -v busybox) || die "busybox not found; run: bash scripts/engines.sh install"
    bash_bin=$(command -v bash)
    make_bin=$(command -v make) || die "make not found on the host (apt-get install make)"
    if ldd "$busybox" >/dev/null 2>&1; then
        die "$busybox is not static (install busybox-static)"
    fi
    mkdir -p "$root"/usr/{bin,lib,lib64} "$root"/{etc,tmp,root,proc,sys,dev,var/tmp,home}
    ln -s usr/bin "$root/bin"
    ln -s usr/lib "$root/lib"
    ln -s usr/lib64 "$root/lib64"
    ln -s usr/bin "$root/sbin"
    ln -s bin "$root/usr/sbin"
    chmod 1777 "$root/tmp" "$root/var/tmp"
    chmod 0700 "$root/root"
    cp "$busybox" "$root/usr/bin/busybox"
    cp -L "$bash_bin" "$root/usr/bin/bash"
    cp -L "$make_bin" "$root/usr/bin/make"
    chmod 0755 "$root/usr/bin/busybox" "$root/usr/bin/bash" "$root/usr/bin/make"
    local applet
    while read -r applet; do
        applet=${applet##*/}
        [ -n "$applet" ] || continue
        [ -e "$root/usr/bin/$applet" ] || [ -L "$root/usr/bin/$applet" ] || ln -s busybox "$root/usr/bin/$applet"
    done < <("$busybox" --list)
    # Libraries: of bash, make, the extra binaries, plus libgcc_s and libm (every Rust binary needs them, so the
    # image stays the same whether or not the kerblam binary is passed).
    local bins=("$bash_bin" "$make_bin") b lib
    for b in "$@"; do
        [ -f "$b" ] || die "extra binary not found: $b"
        bins+=("$b")
    done
    {
        for b in "${bins[@]}"; do libs_of "$b"; done
        local soname
        for soname in libgcc_s.so.1 libm.so.6; do
            # No early `exit` in awk: ldconfig would die of SIGPIPE and fail the pipeline (pipefail).
            ldconfig -p 2>/dev/null | awk -v n="$soname" '$1 == n && /x86-64/ && !done {print $NF; done = 1}'
        done
    } | sort -u | while read -r lib; do
        if [ -n "$lib" ]; then put_file "$lib" "$root"; fi
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    chmod 0644 "$root/etc/passwd" "$root/etc/group"
}

import_into() {
    local engine="$1" tarball="$2" digest="$3"
    local ref="$BASE_TAG" prog="$engine"
    if [ "$engine" = podman ]; then
        ref="localhost/${BASE_TAG#localhost/}"
        prog="${KERBLAM_PODMAN:-podman}"
    elif [ "$engine" = docker ]; then
        prog="${KERBLAM_DOCKER:-docker}"
    fi
    local have
    have=$("$prog" image inspect --format "{{ index .Config.Labels \"$LABEL_KEY\" }}" "$ref" 2>/dev/null || true)
    if [ "$have" = "$digest" ]; then
        say "$engine: $ref is up to date (rootfs sha256 $digest)"
        return 0
    fi
    say "$engine: importing $ref (rootfs sha256 $digest)"
    "$prog" import \
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change "LABEL $LABEL_KEY=$digest" \
        --change 'CMD ["/bin/sh"]' \
        "$tarball" "$ref" >/dev/null
}

cmd_base_image() {
    local engines="${KERBLAM_BASE_ENGINES:-}"
    if [ -z "$engines" ]; then
        command -v docker >/dev/null && docker_ok && engines="docker"
        command -v podman >/dev/null && podman info >/dev/null 2>&1 && engines="$engines podman"
        [ -n "$engines" ] || die "neither docker nor podman is running; run: bash scripts/engines.sh start"
    fi
    # Serialize concurrent callers (parallel test processes): one builds, the others find it done.
    local lock="${TMPDIR:-/tmp}/kerblam-test-base.lock"
    exec 9>"$lock"
    flock 9
    work=$(mktemp -d "${TMPDIR:-/tmp}/kerblam-base.XXXXXX")
    trap 'rm -rf "${work:-}"' EXIT
    build_rootfs "$work/rootfs" "$@"
    # Deterministic tar: sorted names, fixed mtime, numeric owner 0.
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
        -C "$work/rootfs" -cf "$work/rootfs.tar" .
    local digest
    digest=$(sha256sum "$work/rootfs.tar" | cut -d' ' -f1)
    local e
    for e in $engines; do
        import_into "$e" "$work/rootfs.tar" "$digest"
    done
    echo "$BASE_TAG"
}

main() {
    local cmd="${1:-}"
    [ $# -gt 0 ] && shift
    case "$cmd" in
    install) cmd_install "$@" ;;
    start) cmd_start "$@" ;;
    base-image) cmd_base_image "$@" ;;
    *)
        echo "usage: bash scripts/engines.sh install|start|base-image [BINARY...]" >&2
        exit 2
        ;;
    esac
}

main "$@"
