#!/usr/bin/env bash
# Install the system packages otel-netreceiver's tests need, on Debian bookworm, as root.
# Idempotent: a second run only checks. Used by scripts/dev.sh test (the README's test command),
# .ci/run through it, and the agent image (deploy/, later).
#
# From bookworm: iproute2 (ip, nstat), ethtool, nftables, procps.
# From trixie, unpacked (dpkg -x) into $ONR_TOOLS_DIR and never installed system-wide:
#   prometheus 2.53 + promtool (bookworm has 2.42: no native histogram/OTLP-era fixes),
#   victoria-metrics (vmagent: the OTLP receiver that translates names as ADOT does),
#   prometheus-alertmanager (amtool; unpacking starts no daemon).
# A trixie apt source is added with Pin-Priority 100, so nothing else upgrades to trixie.
set -euo pipefail

tools="${ONR_TOOLS_DIR:-/opt/otel-netreceiver/tools}"
cache="$tools/debs"
TRIXIE_DEBS=(prometheus promtool victoria-metrics prometheus-alertmanager)
BIN_NAMES=(prometheus promtool vmagent victoria-metrics vmalert-tool amtool)

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps.sh: run as root (it uses apt-get)" >&2
        exit 1
    fi
}

install_bookworm_packages() {
    local missing=()
    for pkg in iproute2 ethtool nftables procps ca-certificates python3-venv; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

add_trixie_source() {
    local list=/etc/apt/sources.list.d/onr-trixie.sources
    local pin=/etc/apt/preferences.d/onr-trixie
    if [ ! -f "$list" ]; then
        printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$list"
        printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' >"$pin"
        apt-get update -qq
    fi
}

unpack_trixie_tools() {
    mkdir -p "$cache" "$tools/root" "$tools/bin"
    local pkg version deb
    for pkg in "${TRIXIE_DEBS[@]}"; do
        version="$(apt-cache madison "$pkg" | awk '/ trixie\// {print $3; exit}')"
        if [ -z "$version" ]; then
            apt-get update -qq
            version="$(apt-cache madison "$pkg" | awk '/ trixie\// {print $3; exit}')"
        fi
        [ -n "$version" ] || { echo "install-deps.sh: no trixie version of $pkg" >&2; exit 1; }
        deb="$(ls "$cache/${pkg}_"*.deb 2>/dev/null | head -n1 || true)"
        if [ ! -f "$tools/root/.$pkg-$version" ]; then
            rm -f "$cache/${pkg}_"*.deb
            (cd "$cache" && apt-get download -qq "$pkg=$version" 2>&1 | grep -v unsandboxed || true)
            deb="$(ls "$cache/${pkg}_"*.deb | head -n1)"
            dpkg -x "$deb" "$tools/root"
            touch "$tools/root/.$pkg-$version"
        fi
    done
    for name in "${BIN_NAMES[@]}"; do
        ln -sf "$tools/root/usr/bin/$name" "$tools/bin/$name"
        [ -x "$tools/bin/$name" ] || { echo "install-deps.sh: $name missing after unpack" >&2; exit 1; }
    done
}

# Later (issue 4): bcc from python3-bpfcc and kernel headers for the running kernel.
install_bpf_deps() {
    :
}

need_root
install_bookworm_packages
add_trixie_source
unpack_trixie_tools
echo "install-deps.sh: tools in $tools/bin:"
"$tools/bin/prometheus" --version 2>&1 | head -n1
"$tools/bin/promtool" --version 2>&1 | head -n1
# Debian's vmagent build prints no version: report the unpacked package's.
echo "vmagent from $(cd "$tools/root" && ls -A | grep '^\.victoria-metrics-' | sed 's/^\.//')"
"$tools/bin/amtool" --version 2>&1 | head -n1
ethtool --version
