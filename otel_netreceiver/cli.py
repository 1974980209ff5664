"""The ``otel-netreceiver`` command: run, once, probes, check-config, watch, top.

With no configuration the agent runs on the embedded defaults and prints a
periodic summary of what this machine's kernel shows; with an OTLP endpoint
(file or OTEL_EXPORTER_OTLP_ENDPOINT) it exports instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TextIO

from otel_netreceiver import __version__
from otel_netreceiver.config.loader import ConfigError, LoadedConfig, defaults, load_file
from otel_netreceiver.diagnosis import command as diagnose_command
from otel_netreceiver.export.console import format_probes, format_snapshot, snapshot_json
from otel_netreceiver.runtime.agent import Agent
from otel_netreceiver.runtime.reload import ConfigReloader

log = logging.getLogger("otel_netreceiver")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otel-netreceiver", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    for name, text in (("run", "run the agent (the default)"),
                       ("once", "collect once and print what was seen"),
                       ("probes", "say which collectors work on this host, and why not")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("-c", "--config", default=os.environ.get("OTEL_NETRECEIVER_CONFIG"),
                         help="YAML configuration file (default: embedded defaults)")
        if name != "run":
            cmd.add_argument("--format", choices=("text", "json"), default="text")
        if name == "probes":
            cmd.add_argument("--print-program", metavar="NAME", default="",
                             help="print the C a probe compiles to on this kernel and exit "
                             "(NAME: a collectors.ebpf probe, or events/NAME)")
    check = sub.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("config")
    diagnose_command.add_parser(sub, os.environ.get("OTEL_NETRECEIVER_CONFIG"))
    _watch_parser(sub)
    _top_parser(sub)
    return parser


def _top_parser(sub: argparse._SubParsersAction) -> None:
    from otel_netreceiver.top.columns import COLUMNS

    cmd = sub.add_parser("top", help="the node's pods ranked by drops, resets, retransmits... "
                         "now (reads the running agent)")
    cmd.add_argument("-c", "--config", default=os.environ.get("OTEL_NETRECEIVER_CONFIG"),
                     help="the agent's configuration (for correlation.socket)")
    cmd.add_argument("--socket", help="the agent's node API socket (default: from the config, "
                     "else /run/otel-netreceiver/api.sock)")
    cmd.add_argument("--once", action="store_true", help="print one table and exit")
    cmd.add_argument("--format", choices=("text", "json"), default="text",
                     help="json: print the agent's answer once (implies --once)")
    cmd.add_argument("--sort", default="drops", choices=[c.key for c in COLUMNS],
                     help="column to sort by (default drops)")
    cmd.add_argument("--refresh", type=float, default=2.0,
                     help="seconds between questions to the agent (default 2)")


def _watch_parser(sub: argparse._SubParsersAction) -> None:
    from otel_netreceiver.config.schema import EVENT_TYPES

    cmd = sub.add_parser("watch", help="stream kernel events (resets, drops, slow softirqs) live")
    cmd.add_argument("-c", "--config", default=os.environ.get("OTEL_NETRECEIVER_CONFIG"),
                     help="YAML configuration file (default: embedded defaults)")
    cmd.add_argument("--type", action="append", default=[], choices=EVENT_TYPES,
                     help="event type to show (repeatable; default: collectors.events.types)")
    cmd.add_argument("--namespace", default="", help="only events of this Kubernetes namespace")
    cmd.add_argument("--pod", default="", help="only events of this pod (name or UID)")
    cmd.add_argument("--format", choices=("text", "json"), default="text")


def _load(path: str | None, env: Mapping[str, str]) -> LoadedConfig:
    return load_file(path, env) if path else defaults(env)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "run"
    env = dict(os.environ)
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if command == "check-config":
            load_file(args.config, env)
            print(f"{args.config}: valid")
            return 0
        loaded = _load(getattr(args, "config", None), env)
    except ConfigError as exc:
        print(f"otel-netreceiver: invalid configuration: {exc}", file=sys.stderr)
        return 2
    logging.getLogger().setLevel(loaded.config.log_level.upper())
    if command == "once":
        return _once(loaded, env, args.format)
    if command == "probes" and args.print_program:
        return _print_program(loaded, args.print_program)
    if command == "probes":
        return _probes(loaded, env, args.format)
    if command == "diagnose":
        return diagnose_command.run(args, loaded.config.correlation.socket)
    if command == "top":
        return _top(args, loaded.config.correlation.socket)
    if command == "watch":
        from otel_netreceiver.events.watch import watch

        return watch(loaded, env, args.type, args.namespace, args.pod, args.format)
    return _run(loaded, env, getattr(args, "config", None))


def _top(args: argparse.Namespace, socket_from_config: str) -> int:
    from otel_netreceiver.top import app
    from otel_netreceiver.top.client import DEFAULT_SOCKET

    path = args.socket or socket_from_config or DEFAULT_SOCKET
    if args.refresh < 0.2:
        print("otel-netreceiver top: --refresh must be at least 0.2 seconds", file=sys.stderr)
        return 2
    if args.once or args.format == "json":
        return app.once(path, args.format, args.sort, sys.stdout)
    return app.live(path, args.refresh, args.sort)


def _once(loaded: LoadedConfig, env: Mapping[str, str], fmt: str) -> int:
    agent = Agent(loaded, env, listen=False)
    agent.start_collectors_only()
    try:
        agent.wait_first_collection(timeout=30)
        agent.store.update(agent.self_collection())
        snapshot = agent.store.snapshot()
        if fmt == "json":
            print(snapshot_json(snapshot, agent.resource, agent.probes()))
        else:
            print(f"otel-netreceiver {__version__} on {agent.node}")
            print("collectors:")
            print("\n".join(format_probes(agent.probes())))
            print("series:")
            print("\n".join(format_snapshot(snapshot)))
    finally:
        agent.stop(flush=False)
    return 0


def _print_program(loaded: LoadedConfig, name: str) -> int:
    from otel_netreceiver.runtime.print_program import (
        ProbeUnavailable,
        UnknownProgram,
        program_text,
    )

    try:
        print(program_text(loaded.config, name))
    except UnknownProgram as exc:
        print(f"otel-netreceiver probes: {exc}", file=sys.stderr)
        return 2
    except (ProbeUnavailable, OSError) as exc:
        print(f"otel-netreceiver probes: {name}: cannot be rendered here: {exc}", file=sys.stderr)
        return 1
    return 0


def _probes(loaded: LoadedConfig, env: Mapping[str, str], fmt: str) -> int:
    agent = Agent(loaded, env, listen=False)
    agent.build_collectors_only()
    try:
        agent.peer_zones.check()  # one DescribeSubnets and one Node list: what answers here
        statuses = agent.probes()
    finally:
        agent.stop(flush=False)
    if fmt == "json":
        import json

        print(json.dumps([{"name": s.name, "active": s.active, "reason": s.reason}
                          for s in statuses], indent=2))
    else:
        print("\n".join(format_probes(statuses)))
    return 0


def _totals_on_enter(agent: Agent, keys: TextIO) -> None:
    """Enter on the agent's terminal prints every cumulative value at once: the console's
    totals a keypress away (``exporters.console.totals`` prints them with every summary).
    Line-buffered reads, so the terminal stays as it is (no raw mode to restore); a daemon
    thread, so a read blocked on the terminal never holds up the exit."""
    def read() -> None:
        for _ in keys:  # one line per Enter; end of input (Ctrl-D) ends it
            if not agent.print_totals():
                log.info("no totals to print: the console exporter is off or has not "
                         "printed a summary yet")
    threading.Thread(target=read, name="console-keys", daemon=True).start()


def _run(loaded: LoadedConfig, env: Mapping[str, str], path: str | None) -> int:
    agent = Agent(loaded, env)
    agent.console_keys = sys.stdin is not None and sys.stdin.isatty()
    stop = threading.Event()
    reloader = ConfigReloader(agent, path, env) if path else None
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if reloader is not None:
        signal.signal(signal.SIGHUP, lambda *_: reloader.request())
    agent.start()
    if agent.console_keys:
        _totals_on_enter(agent, sys.stdin)
    log.info("started on %s: %s", agent.node,
             "; ".join(f"{s.name}: {'active' if s.active else 'unavailable'} ({s.reason})"
                       for s in agent.probes()))
    if reloader is not None:
        reloader.start()
    while not stop.wait(0.5):
        pass
    started = time.monotonic()
    if reloader is not None:
        reloader.stop()
    agent.stop(flush=True)
    log.info("stopped after a final export (%.1fs)", time.monotonic() - started)
    return 0
