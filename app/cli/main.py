"""The ``relay`` command.

``relay`` alone opens the window; ``relay PATH...`` opens it and imports PATH. Subcommands work
without a display; with ``--json`` each prints exactly one JSON object on stdout. ``--home DIR``
(or ``RELAY_HOME``) chooses the data dir. Each area of Relay adds its subcommands from its own
module, listed in :data:`COMMAND_MODULES`: a module has ``register(subparsers, common)``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from app import __version__, crash
from app.errors import RelayError
from app.home import resolve_home
from app.store.local import Store, write_error
from app.tasks import Progress, ProgressState

#: Modules that add subcommands (data, so a new area is one line here).
COMMAND_MODULES = ["app.cli.store", "app.cli.volume", "app.cli.net", "app.cli.pacs",
                   "app.cli.node", "app.cli.workflow", "app.cli.storecheck", "app.cli.storage",
                   "app.cli.rules"]

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", default=argparse.SUPPRESS,
                        help="data dir (store, settings, queue); default: $RELAY_HOME or the "
                             "user data dir")
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="more log output on stderr")
    parser = argparse.ArgumentParser(
        prog="relay", parents=[common],
        description="Relay: telestroke image exchange. Without a command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr,arg-type]
    # Words that are not options, skipping the value of ``--home DIR`` (``relay --home D ls``).
    positional = [a for i, a in enumerate(argv)
                  if not a.startswith("-") and (i == 0 or argv[i - 1] != "--home")]
    if not positional or positional[0] not in commands:
        if any(a in ("-h", "--help", "--version") for a in argv):
            parser.parse_args(argv)
        return _open_window(argv)
    args = parser.parse_args(argv)
    _setup_logging(getattr(args, "verbose", 0) or 0)
    crash.install()
    handler: Handler = args.handler
    try:
        return handler(args)
    except BrokenPipeError:  # `relay import ... | head`: the reader stopped; not a crash
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit must not fail again
        return 141  # as a shell reports a command stopped by SIGPIPE
    except RelayError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:  # damage found past opening (a malformed page)
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:  # not damage
            print(f"relay: {write_error(resolve_home(getattr(args, 'home', None)), exc)}",
                  file=sys.stderr)
            return 2
        print(f"relay: a Relay database is damaged or unreadable ({exc}); `relay reindex` "
              f"rebuilds the store index from the stored files", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("relay: interrupted", file=sys.stderr)
        return 130


def _open_window(argv: list[str]) -> int:
    gui = argparse.ArgumentParser(prog="relay")
    gui.add_argument("--home")
    gui.add_argument("-v", "--verbose", action="count", default=0)
    gui.add_argument("paths", nargs="*", help="folders, DICOMDIR media or zips to import and open")
    args = gui.parse_args(argv)
    _setup_logging(args.verbose)
    crash.install()
    from app.ui.main import run  # Qt is imported only here

    return run(home=resolve_home(args.home), paths=args.paths)


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="relay: %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    # pydicom's complaints about individual files go into import reports, not the terminal.
    logging.getLogger("pydicom").propagate = verbose >= 2


# -- helpers for command modules -------------------------------------------------------------
def open_store(args: argparse.Namespace, *, reading: bool = False) -> Store:
    """The store of ``--home``; ``reading``: a command that only reads also works on a store
    that cannot be written (opened read-only, with a note on stderr)."""
    home = resolve_home(getattr(args, "home", None))
    if not reading:
        return Store(home)
    store = Store.for_reading(home)
    if store.read_only:
        print(f"relay: note: the store at {home} cannot be written; read from it as it is",
              file=sys.stderr)
    return store


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (escape sequences from file names on
    outside media, say) shown as ``\\x1b`` and the like, never sent to the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class TerminalProgress:
    """A one-line progress bar on stderr, shown only on a terminal."""

    def __init__(self, progress: Progress, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._shown = False
        if self.enabled:
            progress.subscribe(self._draw)

    def _draw(self, state: ProgressState) -> None:
        width = 30
        frac = state.fraction
        if frac is None:
            bar = "." * (state.done % width)
            counts = f"{state.done}"
        else:
            filled = int(frac * width)
            bar = "#" * filled + "-" * (width - filled)
            counts = f"{state.done}/{state.total}"
        line = f"\r{state.label} [{bar:<{width}}] {counts} {state.rate:6.1f}/s"
        sys.stderr.write(line[:120])
        sys.stderr.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def cancel_on_sigint(progress: Progress) -> None:
    """First Ctrl-C cancels the task cleanly; a second one interrupts."""

    def handler(signum: int, frame: Any) -> None:
        if progress.cancelled:
            raise KeyboardInterrupt
        progress.cancel()
        sys.stderr.write("\nrelay: cancelling (Ctrl-C again to interrupt)\n")

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        pass

