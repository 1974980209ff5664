#!/usr/bin/env bash
# The README's two commands. Everything a fresh Debian bookworm machine needs is set up here.
#   scripts/dev.sh run [agent args...]   set up .venv and run the agent on this machine
#   scripts/dev.sh test [pytest args...] install the test tools (root), set up .venv, lint, test
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${ONR_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

ensure_venv() {
    local extras="$1"
    if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        else
            echo "dev.sh: python3-venv is missing: run 'apt-get install python3-venv' as root" >&2
            exit 1
        fi
    fi
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    # pip's own chatter goes to a log; it is shown only if the install fails
    local log="$venv/pip-install.log"
    # the tests also run the application SDK's suite (sdk/, its own distribution)
    local sdk=()
    [ -n "$extras" ] && sdk=(-e "$here/sdk[test]")
    if ! { "$venv/bin/python" -m pip install -q --upgrade pip &&
           "$venv/bin/python" -m pip install -q -e "$here$extras" "${sdk[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "dev.sh: installing into $venv failed (log above)" >&2
        exit 1
    fi
    # bcc is Debian's (python3-bpfcc): pure Python over libbcc.so; link just that package
    # into the venv rather than all of Debian's dist-packages (docs/background.md, "This kind of kernel")
    if [ -d /usr/lib/python3/dist-packages/bcc ]; then
        local site
        site="$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')"
        ln -sfn /usr/lib/python3/dist-packages/bcc "$site/bcc"
    fi
}

case "${1:-}" in
    run)
        shift
        if [ "$(id -u)" = 0 ]; then
            bash "$here/scripts/install-deps.sh" --agent  # bcc and headers for the eBPF probes
        fi
        ensure_venv ""
        exec "$venv/bin/otel-netreceiver" "$@"
        ;;
    test)
        shift
        if [ "$(id -u)" = 0 ]; then
            bash "$here/scripts/install-deps.sh"
        else
            echo "dev.sh: not root: skipping scripts/install-deps.sh (tests needing root will say so)" >&2
        fi
        ensure_venv "[test]"
        cd "$here"
        "$venv/bin/ruff" check .
        exec "$venv/bin/python" -m pytest "$@"
        ;;
    *)
        echo "usage: scripts/dev.sh run [agent args...] | scripts/dev.sh test [pytest args...]" >&2
        exit 2
        ;;
esac
