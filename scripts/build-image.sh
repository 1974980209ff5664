#!/usr/bin/env bash
# Build the agent image (deploy/image/Containerfile) with podman, as root, with no image
# registry and no PyPI inside the build:
#   scripts/build-image.sh [--bcc] [--tag NAME]
#     --bcc      with Debian's bcc (python3-bpfcc) for the eBPF probes (components/ebpf);
#                default tag otel-netreceiver:<version>-bpf instead of otel-netreceiver:<version>
#     --tag      the image name (repeatable); e.g. the DaemonSet's public.ecr.aws/... name
# Prints the image's name and size (bytes) on the last line: "<name> <size>".
#
# 1. The base image, debian:<release>-slim, is taken as it is when the store has it (pulled
#    from a registry, or left by an earlier run); otherwise it is made here: debootstrap's
#    minbase variant from the machine's own Debian mirror, slimmed as Debian's official images
#    are (no documentation, man pages or locales; no apt lists), imported and tagged with the
#    name the Containerfile's FROM expects. A base older than ONR_BASE_MAX_AGE_DAYS (30) is
#    made again, so the image does not keep old packages for ever.
# 2. The wheels: pip wheel of this project (a copy of the sources, so the checkout gets no
#    build/ or *.egg-info) and of every dependency, on this machine, which can reach PyPI.
# 3. podman build --pull=never --network host: the Containerfile installs the wheels with
#    pip --no-index; apt inside the build reaches the Debian mirror over the host's network.
# 4. The untagged images of earlier builds (label org.opencontainers.image.title) and bases
#    made here that a newer one replaced (label org.otel-netreceiver.base) are pruned.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONTAINERFILE="$here/deploy/image/Containerfile"
RELEASE=bookworm
BASE="docker.io/library/debian:$RELEASE-slim"
BASE_MAX_AGE_DAYS="${ONR_BASE_MAX_AGE_DAYS:-30}"
BASE_LABEL=org.otel-netreceiver.base=debootstrap  # a base made here, replaced after 30 days
PYTHON="${PYTHON:-}"
ctx=""
export DEBIAN_FRONTEND=noninteractive

log() { echo "build-image.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# The URI apt uses here for Debian's <suite> (the .sources and .list files alike), from the
# index targets apt itself resolved; empty when the machine has no such source.
apt_mirror() {
    apt-get indextargets --format '$(REPO_URI) $(CODENAME) $(LABEL)' 2>/dev/null |
        awk -v suite="$1" '$2 == suite && $3 ~ /^Debian/ { print $1; exit }'
}

base_is_fresh() {
    local created age
    created="$(podman image inspect --format '{{.Created.Unix}}' "$BASE" 2>/dev/null)" ||
        return 1
    age=$(( ($(date +%s) - created) / 86400 ))
    [ "$age" -lt "$BASE_MAX_AGE_DAYS" ]
}

# Debian's official images are made by debuerreotype: minbase, then these minimizing steps
# (debuerreotype-minimizing-config and -slimify): dpkg excludes documentation, man pages and
# locales from every later install too; apt keeps no lists or downloaded packages.
slim_down() {
    local root="$1"
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
# as debuerreotype-minimizing-config: no documentation, man pages or translations
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/man/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
CFG
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$root"/usr/share/{info,man,locale,lintian,linda}/* \
           "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
           "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/log/apt/*
}

# The image's apt sources: the release, its updates and its security suite, from the mirrors
# this machine uses (as the official image's debian.sources, with this machine's URIs).
write_sources() {
    local root="$1" mirror="$2" security
    security="$(apt_mirror "$RELEASE-security")"
    rm -f "$root/etc/apt/sources.list"
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' \
            "$mirror" "$RELEASE" "$RELEASE"
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        if [ -n "$security" ]; then
            printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' \
                "$security" "$RELEASE"
            printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        fi
    } >"$root/etc/apt/sources.list.d/debian.sources"
}

make_base() {
    local mirror root
    mirror="$(apt_mirror "$RELEASE")"
    if [ -z "$mirror" ]; then  # apt resolves its sources into index targets on update
        apt-get update -qq
        mirror="$(apt_mirror "$RELEASE")"
    fi
    [ -n "$mirror" ] ||
        die "apt knows no Debian $RELEASE source here (none configured, or no apt-get update yet)"
    command -v debootstrap >/dev/null || die "debootstrap is missing (scripts/install-deps.sh)"
    root="$(mktemp -d /var/tmp/onr-base.XXXXXX)"
    log "making $BASE: debootstrap --variant=minbase $RELEASE from $mirror"
    if ! debootstrap --variant=minbase "$RELEASE" "$root" "$mirror" >"$root.log" 2>&1; then
        tail -n 20 "$root.log" >&2
        rm -rf "$root" "$root.log"
        die "debootstrap failed (last lines above)"
    fi
    slim_down "$root"
    write_sources "$root" "$mirror"
    tar --numeric-owner -C "$root" -c . |
        podman import --quiet \
            --change 'CMD ["bash"]' --change "LABEL $BASE_LABEL" \
            --message "debootstrap --variant=minbase $RELEASE $mirror, slimmed" - "$BASE" >/dev/null
    rm -rf "$root" "$root.log"
}

# This project's wheel and its dependencies' (grpc extra: exporters.otlp.protocol grpc).
make_wheels() {
    local src="$1" out="$2"
    mkdir -p "$src"
    cp -r "$here/pyproject.toml" "$here/README.md" "$here/otel_netreceiver" "$src/"
    find "$src" -name __pycache__ -prune -exec rm -rf {} +
    # the same bytes for the same sources (zip entry times from SOURCE_DATE_EPOCH), so the
    # same checkout gives the same WHEELS_DIGEST and podman's layer cache is used
    if ! SOURCE_DATE_EPOCH=315532800 "$PYTHON" -m pip wheel -q --wheel-dir "$out" \
            "$src[grpc]" >"$src.log" 2>&1; then
        cat "$src.log" >&2
        die "pip wheel failed (output above)"
    fi
}

# The untagged images that earlier builds of this Containerfile left (stages and images
# whose tag moved to a newer build); podman's layer cache keeps what the latest build uses.
prune_earlier_builds() {
    local label
    for label in org.opencontainers.image.title=otel-netreceiver "$BASE_LABEL"; do
        podman image prune --force --filter "label=$label" >/dev/null
    done
}

main() {
    local bcc=0 tags=() version size digest
    while [ $# -gt 0 ]; do
        case "$1" in
            --bcc) bcc=1 ;;
            --tag) shift; tags+=("${1:?--tag needs a name}") ;;
            *) die "usage: scripts/build-image.sh [--bcc] [--tag NAME]..." ;;
        esac
        shift
    done
    [ "$(id -u)" = 0 ] || die "run as root (podman's store and debootstrap)"
    command -v podman >/dev/null || die "podman is missing (scripts/install-deps.sh)"
    if [ -z "$PYTHON" ]; then
        PYTHON=python3
        [ -x "$here/.venv/bin/python" ] && PYTHON="$here/.venv/bin/python"
    fi
    version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$here/otel_netreceiver/__init__.py")"
    [ -n "$version" ] || die "no __version__ in otel_netreceiver/__init__.py"
    if [ ${#tags[@]} -eq 0 ]; then
        tags=("otel-netreceiver:$version")
        [ "$bcc" = 1 ] && tags=("otel-netreceiver:$version-bpf")
    fi
    base_is_fresh || make_base
    ctx="$(mktemp -d /var/tmp/onr-image.XXXXXX)"  # global: the EXIT trap runs after main
    trap 'rm -rf "$ctx"' EXIT
    make_wheels "$ctx/src" "$ctx/context/wheels"
    log "podman build ${tags[*]} (bcc: $bcc)"
    digest="$(cd "$ctx/context/wheels" && sha256sum -- * | sha256sum | cut -d' ' -f1)"
    if ! podman build --pull=never --network host --build-arg "WITH_BCC=$bcc" \
            --build-arg "WHEELS_DIGEST=$digest" \
            -f "$CONTAINERFILE" "${tags[@]/#/--tag=}" "$ctx/context" >"$ctx/build.log" 2>&1; then
        cat "$ctx/build.log" >&2
        die "podman build failed (output above)"
    fi
    prune_earlier_builds
    size="$(podman image inspect --format '{{.Size}}' "${tags[0]}")"
    echo "${tags[0]} $size"
}

main "$@"
