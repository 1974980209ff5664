#!/usr/bin/env bash
# Install the system packages otel-netreceiver's tests need, on Debian bookworm, as root.
# Idempotent: a second run only checks (no download, no apt-get update) and takes a second or two.
# Used by scripts/dev.sh test (the README's test command) and so by .ci/run.
#
# From bookworm, installed: iproute2 (ip, nstat), ethtool, nftables, procps, curl,
#   ca-certificates, python3-venv, tmux (the tests drive `top` in a real terminal),
#   prometheus-alertmanager (for amtool; its daemon is never started and is disabled at
#   boot: the tests only run amtool).
#   podman, runc and debootstrap: tests/integration/test_image.py builds the agent's image
#   (scripts/build-image.sh) and runs it; see configure_podman for this machine's settings.
#   dnsmasq-base (the binary without its service), bind9-dnsutils (dig), tcpdump, dnsperf
#   and bpftrace: the DNS tests run real resolvers and clients in test pods, cross-check
#   counts against tcpdump, and the benchmarks compare the probes with bpftrace's count().
# From trixie, downloaded and unpacked (dpkg -x) under $ONR_TOOLS_DIR, never installed
#   system-wide: prometheus 2.53 (remote-write receiver; bookworm has 2.42), promtool, and
#   victoria-metrics (vmagent: the OTLP receiver with Prometheus naming; bookworm's 1.79 is
#   too old). Binaries are linked into $ONR_TOOLS_DIR/bin, where tests/support/tools.py looks.
# The trixie apt source uses the machine's own bookworm mirror and Pin-Priority 100, so no
#   installed package is ever upgraded to trixie.
set -euo pipefail

TOOLS_DIR="${ONR_TOOLS_DIR:-/opt/otel-netreceiver/tools}"
DEB_CACHE="$TOOLS_DIR/debs"
PKG_ROOT="$TOOLS_DIR/pkgs"
BIN_DIR="$TOOLS_DIR/bin"
TRIXIE_SOURCE=/etc/apt/sources.list.d/onr-trixie.sources
TRIXIE_PIN=/etc/apt/preferences.d/onr-trixie
BOOKWORM_PKGS=(iproute2 ethtool nftables procps curl ca-certificates python3-venv tmux
               debian-archive-keyring podman runc debootstrap
               dnsmasq-base bind9-dnsutils tcpdump dnsperf bpftrace)
# trixie package -> binaries to link (plain name; a "-prod" suffixed build is accepted too)
declare -A TRIXIE_BINS=(
    [prometheus]="prometheus"
    [promtool]="promtool"
    [victoria-metrics]="vmagent victoria-metrics vmalert-tool?"
)
export DEBIAN_FRONTEND=noninteractive

log() { echo "install-deps.sh: $*" >&2; }
die() { log "$*"; exit 1; }

need_root() {
    [ "$(id -u)" = 0 ] || die "run as root (it uses apt-get)"
}

# One apt-get update per run at most, and none when nothing needs installing or downloading.
APT_UPDATED=""
apt_update_once() {
    [ -n "$APT_UPDATED" ] && return 0
    apt-get update -qq
    APT_UPDATED=1
}

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# dpkg's maintainer scripts chatter on stderr even with -qq; keep it in a log shown on failure.
apt_install() {
    local out
    out="$(mktemp)"
    if ! apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "$@" >"$out" 2>&1
    then
        cat "$out" >&2
        rm -f "$out"
        die "apt-get install $* failed (output above)"
    fi
    rm -f "$out"
}

install_bookworm_packages() {
    local missing=() pkg
    for pkg in "${BOOKWORM_PKGS[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    apt_update_once
    apt_install "${missing[@]}"
}

# Alertmanager's postinst starts the daemon through invoke-rc.d (sysvinit script, also used
# when there is no systemd) or deb-systemd-invoke; both obey policy-rc.d, exit 101 = "don't".
install_amtool() {
    is_installed prometheus-alertmanager && return 0
    log "installing prometheus-alertmanager (amtool only; daemon not started)"
    local policy=/usr/sbin/policy-rc.d made_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# install-deps.sh: no service starts during install\nexit 101\n' \
            >"$policy"
        chmod 755 "$policy"
        made_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt_update_once
    apt_install prometheus-alertmanager
    if [ -n "$made_policy" ]; then rm -f "$policy"; trap - EXIT; fi
    stop_alertmanager_daemon
}

# Belt and braces for a pre-existing policy-rc.d that allowed the start: stop what the
# install started, and keep it from starting at boot.
stop_alertmanager_daemon() {
    local unit=prometheus-alertmanager.service
    if [ -d /run/systemd/system ]; then
        systemctl stop "$unit" >/dev/null 2>&1 || true
    elif /etc/init.d/prometheus-alertmanager status >/dev/null 2>&1; then
        /etc/init.d/prometheus-alertmanager stop >/dev/null
    fi
    update-rc.d prometheus-alertmanager disable >/dev/null 2>&1 || true
    if command -v systemctl >/dev/null; then
        systemctl disable --quiet "$unit" >/dev/null 2>&1 || true
    else
        rm -f "/etc/systemd/system/multi-user.target.wants/$unit"
    fi
}

# The URI of the machine's own bookworm source (deb822 .sources or one-line .list format).
bookworm_mirror() {
    local uri=""
    shopt -s nullglob
    local sources=(/etc/apt/sources.list.d/*.sources) lists=(/etc/apt/sources.list
                                                             /etc/apt/sources.list.d/*.list)
    shopt -u nullglob
    if [ ${#sources[@]} -gt 0 ]; then
        uri="$(awk -v RS= '/(^|\n)Suites:[^\n]*[ \t]bookworm([ \t]|\n|$)/ {
                 if (match($0, /(^|\n)URIs:[ \t]*[^ \t\n]+/)) {
                     s = substr($0, RSTART, RLENGTH); sub(/^\n?URIs:[ \t]*/, "", s); print s; exit
                 } }' "${sources[@]}")"
    fi
    if [ -z "$uri" ]; then
        uri="$(cat "${lists[@]}" 2>/dev/null | awk '$1 == "deb" && !found {
                 i = 2; if ($2 ~ /^\[/) while (i <= NF && $i !~ /\]$/) i++; if ($2 ~ /^\[/) i++
                 if ($(i + 1) == "bookworm") { print $i; found = 1 } }' || true)"
    fi
    [ -n "$uri" ] || die "no bookworm apt source found to take the Debian mirror from"
    echo "$uri"
}

# Writes $2 to $1 unless it already holds exactly that; returns 0 when it changed the file.
write_if_changed() {
    if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then return 1; fi
    printf '%s\n' "$2" >"$1"
}

add_trixie_source() {
    local mirror changed=""
    mirror="$(bookworm_mirror)"
    write_if_changed "$TRIXIE_PIN" "$(printf '%s\n' \
        '# install-deps.sh: never upgrade a bookworm package to trixie (tools are only unpacked)' \
        'Package: *' 'Pin: release n=trixie' 'Pin-Priority: 100')" && changed=1
    write_if_changed "$TRIXIE_SOURCE" "$(printf '%s\n' \
        '# install-deps.sh: Prometheus 2.53, promtool and vmagent are unpacked from here' \
        'Types: deb' "URIs: $mirror" 'Suites: trixie' 'Components: main' \
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg')" && changed=1
    load_trixie_versions
    if [ -n "$changed" ] || ! all_trixie_versions_known; then
        log "apt-get update (trixie source added or not yet fetched)"
        apt_update_once
        load_trixie_versions
    fi
}

# Fills TRIXIE_VERSION[pkg] for the tool packages from one apt-cache call (each call costs
# about a second here: apt rebuilds its cache in memory).
declare -A TRIXIE_VERSION=()
load_trixie_versions() {
    local pkg version
    TRIXIE_VERSION=()
    while read -r pkg version; do
        [ -n "${TRIXIE_VERSION[$pkg]:-}" ] || TRIXIE_VERSION[$pkg]="$version"
    done < <(apt-cache madison "${!TRIXIE_BINS[@]}" 2>/dev/null \
             | awk -F' *[|] *' '$3 ~ / trixie\// { sub(/^ +/, "", $1); print $1, $2 }')
}

trixie_version() {
    echo "${TRIXIE_VERSION[$1]:-}"
}

all_trixie_versions_known() {
    local pkg
    for pkg in "${!TRIXIE_BINS[@]}"; do
        [ -n "${TRIXIE_VERSION[$pkg]:-}" ] || return 1
    done
}

# Unpacks one trixie package into $PKG_ROOT/<pkg>_<version> (skipped if already there) and
# prints that directory. The download verifies the .deb against apt's signed index.
unpack_trixie_package() {
    local pkg="$1" version dest deb tmp
    version="$(trixie_version "$pkg")"
    [ -n "$version" ] || die "apt knows no trixie version of $pkg (is the trixie source reachable?)"
    dest="$PKG_ROOT/${pkg}_${version}"
    if [ ! -f "$dest/.complete" ]; then
        deb="$(cached_deb "$pkg" "$version")"
        if [ -z "$deb" ]; then
            log "downloading $pkg $version from trixie"
            rm -f "$DEB_CACHE/${pkg}_"*.deb
            (cd "$DEB_CACHE" && apt-get download -qq "$pkg=$version" >&2)
            deb="$(cached_deb "$pkg" "$version")"
        fi
        [ -n "$deb" ] || die "apt-get download $pkg=$version left no .deb in $DEB_CACHE"
        tmp="$PKG_ROOT/.unpacking-$pkg"
        rm -rf "$tmp" "$dest"
        dpkg -x "$deb" "$tmp"
        touch "$tmp/.complete"
        mv "$tmp" "$dest"
    fi
    echo "$dest"
}

cached_deb() {
    local found
    found=("$DEB_CACHE/${1}_${2//:/%3a}_"*.deb)
    [ -f "${found[0]}" ] && echo "${found[0]}"
    return 0
}

# Links $BIN_DIR/<name> to the package's binary <name> or <name>-prod; a trailing "?" in the
# name means optional. The link is replaced atomically (tests may be running).
link_binary() {
    local root="$1" name="${2%\?}" optional="" candidate dir target=""
    [ "$2" != "$name" ] && optional=1
    for candidate in "$name" "$name-prod"; do
        for dir in usr/bin usr/sbin bin; do
            [ -x "$root/$dir/$candidate" ] && { target="$root/$dir/$candidate"; break 2; }
        done
    done
    if [ -z "$target" ]; then
        [ -n "$optional" ] && return 0
        die "no $name binary in $(basename "$root") (contents: $(ls "$root/usr/bin" 2>&1))"
    fi
    ln -sfn "$target" "$BIN_DIR/.$name.new"
    mv -Tf "$BIN_DIR/.$name.new" "$BIN_DIR/$name"
    echo "$name"
}

install_trixie_tools() {
    mkdir -p "$DEB_CACHE" "$PKG_ROOT" "$BIN_DIR"
    # apt's downloader drops root for _apt; let it write here so it need not run unsandboxed
    id _apt >/dev/null 2>&1 && chown _apt "$DEB_CACHE"
    local pkg root name linked=() keep=()
    for pkg in "${!TRIXIE_BINS[@]}"; do
        root="$(unpack_trixie_package "$pkg")"
        keep+=("${root##*/}")
        for name in ${TRIXIE_BINS[$pkg]}; do
            name="$(link_binary "$root" "$name")"
            [ -z "$name" ] || linked+=("$name")
        done
    done
    check_prometheus_version
    prune_stale "${linked[*]}" "${keep[*]}"
}

check_prometheus_version() {
    local line
    line="$(first_line "$BIN_DIR/prometheus" --version)"
    [[ "$line" == *"version 2.53."* ]] || die "trixie's prometheus is not 2.53: $line"
}

# First line of a command's output; sed reads it all, so the command never gets SIGPIPE.
first_line() {
    "$@" 2>&1 | sed -n 1p
}

# Removes what older runs (or older versions of this script) left: links into $TOOLS_DIR not
# made by this run, other versions' trees and .debs of the tool packages, and the former
# single-tree layout ($TOOLS_DIR/root, recognised by its .<pkg>-<version> markers). Nothing
# else is touched, whatever ONR_TOOLS_DIR points at.
prune_stale() {
    local made=" $1 " wanted=" $2 " path name
    for path in "$BIN_DIR"/* "$BIN_DIR"/.*.new; do
        if [ -L "$path" ] && [[ "$(readlink "$path")" == "$TOOLS_DIR/"* ]] \
            && [[ "$made" != *" ${path##*/} "* ]]; then
            rm -f "$path"
        fi
    done
    for path in "$PKG_ROOT"/* "$DEB_CACHE"/*.deb; do
        [ -e "$path" ] || continue
        name="${path##*/}"
        name="$(echo "${name%.deb}" | cut -d_ -f1-2 | sed 's/%3a/:/')"
        [[ "$wanted" == *" $name "* ]] && continue
        [[ " ${!TRIXIE_BINS[*]} prometheus-alertmanager " == *" ${name%%_*} "* ]] || continue
        rm -rf "$path"
    done
    if compgen -G "$TOOLS_DIR/root/.prometheus-[0-9]*" >/dev/null; then
        rm -rf "$TOOLS_DIR/root"
    fi
}

# kubectl renders the kustomize trees in deploy/ (offline); trixie ships a static build.
install_kubectl() {
    command -v kubectl >/dev/null 2>&1 && return 0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t trixie kubectl >/dev/null
}

# ---------------------------------------------------------------------------------------------
# eBPF probes: bcc (Debian python3-bpfcc; PyPI's "bcc" is an unrelated package), bpftrace and
# bpftool (independent cross-checks and BPF statistics in tests and bench/), and a kernel build
# tree for bcc's compiler. When the running kernel has no headers package (this project's
# Firecracker 6.18 machines), Debian's newest 6.1 cloud headers stand in: the probes render
# their tracepoint layouts from tracefs and struct offsets from BTF, so the headers only have
# to compile bcc's helper definitions (docs/background.md, "This kind of kernel").
install_bpf_deps() {
    local release build headers
    release="$(uname -r)"
    build="/lib/modules/$release/build"
    local want=(python3-bpfcc bpftrace bpftool)
    if [ ! -e "$build/include" ]; then
        if apt-cache show "linux-headers-$release" >/dev/null 2>&1; then
            want+=("linux-headers-$release")
        else
            headers="$(apt-cache search --names-only '^linux-headers-6\.1\.[0-9-]+-cloud-amd64$' |
                awk '{print $1}' | sort -V | tail -n1)"
            [ -n "$headers" ] && want+=("$headers")
        fi
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null
    if [ ! -e "$build/include" ] && [ -n "${headers:-}" ]; then
        mkdir -p "/lib/modules/$release"
        ln -sfn "/usr/src/$headers" "$build"
        ln -sfn "/usr/src/${headers%-cloud-amd64}-common" "/lib/modules/$release/source"
    fi
    if [ ! -d /sys/kernel/tracing/events ]; then
        mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
    fi
}
# ---------------------------------------------------------------------------------------------

# Podman on machines like this one (a VM whose cgroups are hybrid: v1 controllers beside the
# v2 tree, and whose root lacks CAP_SYS_RESOURCE): crun refuses hybrid cgroups, runc with the
# cgroupfs manager runs containers; podman's default ulimits (nofile 1048576) cannot be set
# without CAP_SYS_RESOURCE, so containers keep podman's own limits; and containers join the
# host's network namespace unless told otherwise, so no run creates the CNI bridge, its
# firewall rules or the ip_forward=1 the bridge plugin sets on a machine whose tests count
# packets. A drop-in file: the packaged containers.conf stays as shipped.
PODMAN_CONF=/etc/containers/containers.conf.d/otel-netreceiver.conf
configure_podman() {
    mkdir -p "${PODMAN_CONF%/*}"
    write_if_changed "$PODMAN_CONF" "$(printf '%s\n' \
        '# install-deps.sh: podman on hybrid-cgroup VMs without CAP_SYS_RESOURCE (see there)' \
        '[containers]' 'default_ulimits = []' 'netns = "host"' \
        '[engine]' 'runtime = "runc"' 'cgroup_manager = "cgroupfs"' 'events_logger = "file"')" \
        || true
}

print_versions() {
    local vmagent_version
    echo "install-deps.sh: tools (links in $BIN_DIR):"
    first_line "$BIN_DIR/prometheus" --version
    first_line "$BIN_DIR/promtool" --version
    # Debian builds vmagent without its version stamp: -version prints an empty line
    vmagent_version="$(first_line "$BIN_DIR/vmagent" -version)"
    if [ -z "$vmagent_version" ]; then
        vmagent_version="vmagent (no built-in version) from victoria-metrics $(
            trixie_version victoria-metrics)"
    fi
    echo "$vmagent_version"
    first_line amtool --version
    podman --version
    ethtool --version
}

main() {
    need_root
    if [ "${1:-}" = "--agent" ]; then
        # what the agent itself uses on this machine (scripts/dev.sh run): no test tools
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 ethtool >/dev/null
        install_bpf_deps
        return 0
    fi
    add_trixie_source
    install_bookworm_packages
    install_amtool
    install_trixie_tools
    install_kubectl
    install_bpf_deps
    configure_podman
    print_versions
}

main "$@"
