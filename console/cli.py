"""`ansim`: one command, several roles.

Each subcommand lives in its own module with a ``run(args, config) -> int``;
they are imported lazily so that `ansim simulate` never loads Textual.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Sequence

from console import config as config_module
from widgets.i18n import LANGUAGES

DESCRIPTION = """\
Ansim: a keyboard-driven console for women's-safety control rooms.

With no command, starts the all-in-one default on this machine: the embedded
broker (when [broker] mode = "embedded"), the core, the simulated city, then
the console. Quitting the console stops them all."""

EPILOG = """\
configuration: config.toml beside the package by default, or --config PATH;
ANSIM_<SECTION>__<KEY>=value overrides one key (e.g. ANSIM_BROKER__PORT=1883)."""

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "console": (
        "console.tui.app",
        "the operator console (TUI), connected to the configured broker",
    ),
    "core": ("console.core.main", "the authority: engine, journal, dispatch; publishes state"),
    "broker": ("console.local.broker", "the embedded MQTT broker (amqtt), loopback only"),
    "simulate": ("console.sim.simulate", "a simulated Seoul: training feed and load generator"),
    "all": ("console.local.allinone", "broker, core and simulator as children, then the console"),
    "export": ("console.bridges.export", "closed incidents from the journal as EIDO, JSON or CSV"),
    "report": (
        "console.bridges.report",
        "the shift's figures from the journal: a self-contained HTML page (and CSV)",
    ),
    "journal": ("console.journal.cli", "check the journal's hash chain, or count its records"),
    "status": (
        "console.core.status",
        "the active core, its term and lease, the journal head, the brokers",
    ),
    "gateway": (
        "console.gateway.service",
        "the HTTP ingest: SOS in JSON and CAP 1.2 alerts (aiohttp)",
    ),
    "ssh": (
        "console.seats.ssh_server",
        "field offices over SSH: each key its own console seat (asyncssh)",
    ),
    "forward-sia": (
        "console.bridges.forward_sia",
        "new SOS incidents to an alarm-receiving centre (SIA DC-09, Contact ID)",
    ),
    "web": (
        "console.seats.web",
        "the console in a browser for wall screens (observer, token, textual-serve)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ansim",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", metavar="PATH", help="configuration file (default: config.toml)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("console", help=COMMANDS["console"][1], description=COMMANDS["console"][1])
    p.add_argument("--operator", metavar="ID", help="operator id (overrides [operator] id)")
    p.add_argument(
        "--role",
        choices=["observer", "operator", "supervisor"],
        help="role shown and sent (the core checks it)",
    )
    p.add_argument(
        "--districts",
        metavar="A,B",
        help="show only these districts (within the operator's [scopes]; the core checks it)",
    )
    p.add_argument(
        "--language",
        choices=LANGUAGES,
        help="the console's language, English or 한국어 (overrides [console] language)",
    )

    p = sub.add_parser("core", help=COMMANDS["core"][1], description=COMMANDS["core"][1])
    p.add_argument(
        "--journal", metavar="PATH", help="SQLite journal file (overrides [journal] path)"
    )
    p.add_argument("--client-id", metavar="ID", help="MQTT client id (overrides [core] client_id)")
    p.add_argument(
        "--partition", metavar="NAME", help="the partition this core serves ([partitions])"
    )

    p = sub.add_parser("broker", help=COMMANDS["broker"][1], description=COMMANDS["broker"][1])
    p.add_argument("--port", type=int, help="port to listen on (overrides [broker] port)")
    p.add_argument(
        "--persistence", metavar="DIR", help="keep retained messages and sessions in DIR"
    )

    p = sub.add_parser(
        "simulate", help=COMMANDS["simulate"][1], description=COMMANDS["simulate"][1]
    )
    p.add_argument("--rate", type=float, help="events per second (overrides [simulate] rate)")
    p.add_argument("--duration", type=float, help="seconds to run; 0 runs until stopped")
    p.add_argument("--seed", type=int, help="random seed: same seed, same city, same events")
    p.add_argument("--scenario", choices=["quiet", "evening", "storm"], help="mix of events")
    p.add_argument("--cameras", type=int, help="number of cameras (up to 200,000)")
    p.add_argument("--responders", type=int, help="number of responders")
    p.add_argument("--source", help="source id the simulator publishes as")
    p.add_argument("--no-resend", action="store_true", help="publish each SOS once, never resend")
    p.add_argument("--quiet", action="store_true", help="no rate lines on stderr")
    p.add_argument("--record", metavar="FILE", help="append the id of every SOS raised to FILE")

    p = sub.add_parser("all", help=COMMANDS["all"][1], description=COMMANDS["all"][1])

    p = sub.add_parser("gateway", help=COMMANDS["gateway"][1], description=COMMANDS["gateway"][1])
    p.add_argument("--host", help="address to listen on (overrides [gateway] host)")
    p.add_argument("--port", type=int, help="port to listen on (overrides [gateway] port)")

    p = sub.add_parser("ssh", help=COMMANDS["ssh"][1], description=COMMANDS["ssh"][1])
    p.add_argument("--host", help="address to listen on (overrides [ssh] host)")
    p.add_argument("--port", type=int, help="port to listen on (overrides [ssh] port)")

    p = sub.add_parser(
        "forward-sia", help=COMMANDS["forward-sia"][1], description=COMMANDS["forward-sia"][1]
    )
    p.add_argument("--host", help="the centre's receiver address (overrides [sia] host)")
    p.add_argument("--port", type=int, help="the centre's receiver port (overrides [sia] port)")

    p = sub.add_parser("web", help=COMMANDS["web"][1], description=COMMANDS["web"][1])
    p.add_argument("--host", help="address to listen on (overrides [web] host)")
    p.add_argument("--port", type=int, help="port to listen on (overrides [web] port)")

    p = sub.add_parser("export", help=COMMANDS["export"][1], description=COMMANDS["export"][1])
    p.add_argument("--format", choices=["eido", "json", "csv"], default="json")
    p.add_argument("--since", metavar="WHEN", help="closed at or after (ISO 8601, with timezone)")
    p.add_argument("--until", metavar="WHEN", help="closed before (a bare date: through that day)")
    p.add_argument("--incident", metavar="ID", help="only this incident")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--journal", metavar="PATH", help="journal file (overrides [journal] path)")
    p.add_argument("--agency", metavar="ID", help="EIDO owning agency id")

    p = sub.add_parser("report", help=COMMANDS["report"][1], description=COMMANDS["report"][1])
    p.add_argument("--since", metavar="WHEN", help="alarms opened at or after (ISO 8601)")
    p.add_argument(
        "--until", metavar="WHEN", help="and before (default: now; a bare date: its end)"
    )
    p.add_argument("--shift", action="store_true", help="the shift running at --until (or now)")
    p.add_argument("--output", "-o", metavar="FILE.html", help="the page (default report.html)")
    p.add_argument("--csv", metavar="FILE.csv", help="also the incidents behind it, as CSV")
    p.add_argument("--journal", metavar="PATH", help="journal file (overrides [journal] path)")

    sub.add_parser("status", help=COMMANDS["status"][1], description=COMMANDS["status"][1])

    p = sub.add_parser("journal", help=COMMANDS["journal"][1], description=COMMANDS["journal"][1])
    actions = p.add_subparsers(dest="journal_action", metavar="ACTION", required=True)
    for action, text in (
        ("verify", "walk the hash chain; name the first bad record (exit 1)"),
        ("stats", "records per kind, dead letters by reason"),
    ):
        a = actions.add_parser(action, help=text, description=text)
        a.add_argument("--journal", metavar="PATH", help="journal file (overrides [journal] path)")
    return parser


def has_embedded_broker() -> bool:
    """Whether amqtt is installed: the `embedded` extra, not a server's requirement."""
    return importlib.util.find_spec("amqtt") is not None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        cfg = config_module.load(args.config)
    except config_module.ConfigError as exc:
        print(f"ansim: configuration error: {exc}", file=sys.stderr)
        return 2
    command = args.command or "all"
    embedded = command == "broker" or (command == "all" and cfg.broker.mode == "embedded")
    if embedded and not has_embedded_broker():
        print(
            'ansim: [broker] mode = "embedded" needs the embedded broker, an extra: '
            "pip install 'ansim[embedded]' (or set mode = \"external\" for your own broker)",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    try:
        return int(module.run(args, cfg) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
