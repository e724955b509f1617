"""Relay's own DICOM node: ``relay node`` (its settings) and ``relay listen`` (run it).

pynetdicom and the node's services are imported by ``listen`` only."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from app.cli.main import open_store, print_json
from app.home import resolve_home
from app.net.dimse.node import NodeSettings, check_ae_title, parse_destination
from app.settings import load_settings, save_settings


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "node", parents=[common], help="Relay's own DICOM node: AE title, port, allowed callers",
        description="Show or change Relay's DICOM node. Defaults: AE title RELAY, port 11112, "
                    "every interface, any caller. Without options it shows the settings.")
    p.add_argument("--ae", metavar="AE_TITLE", help="Relay's AE title (what peers call it)")
    p.add_argument("--port", type=int, help="TCP port to listen on")
    p.add_argument("--bind", metavar="ADDRESS",
                   help="address to listen on: 0.0.0.0 (every interface) or 127.0.0.1")
    p.add_argument("--allow", nargs="+", metavar="AE_TITLE",
                   help="only these calling AE titles may associate (replaces the list)")
    p.add_argument("--allow-any", action="store_true", help="any calling AE title may associate")
    p.add_argument("--destination", action="append", default=[], metavar="AE=HOST:PORT",
                   help="a C-MOVE destination the node may send to (repeatable)")
    p.add_argument("--remove-destination", action="append", default=[], metavar="AE",
                   help="forget a C-MOVE destination")
    p.add_argument("--tls-cert", metavar="PEM", help="certificate the node presents: the node "
                   "then speaks DICOM TLS only, and callers must present trusted certificates")
    p.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    p.add_argument("--tls-ca", metavar="PEM",
                   help="CA of the callers' certificates (besides the system's trust store)")
    p.add_argument("--no-tls", action="store_true", help="plain TCP again (forget the TLS files)")
    p.add_argument("--listen-in-window", choices=("on", "off"),
                   help="run the node in the background while the window is open")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_node)

    p = sub.add_parser(
        "listen", parents=[common],
        help="run Relay's DICOM node in the foreground (C-ECHO, C-STORE, C-FIND, C-GET, C-MOVE)",
        description="Receive from modalities and PACS, and answer queries and retrieves over the "
                    "local store, until Ctrl-C.")
    p.add_argument("--ae", metavar="AE_TITLE", help="AE title for this run (default: settings)")
    p.add_argument("--port", type=int, help="port for this run (default: settings)")
    p.add_argument("--bind", metavar="ADDRESS", help="address for this run (default: settings)")
    p.add_argument("--json", action="store_true",
                   help="print only one JSON object, with the counts, when stopped (without "
                        "it: a line when a study starts arriving, its count every few seconds "
                        "while it arrives, and one when its association ends)")
    p.set_defaults(handler=cmd_listen)


def cmd_node(args: argparse.Namespace) -> int:
    home = resolve_home(getattr(args, "home", None))
    settings = load_settings(home)
    node = settings.node
    changes: dict[str, Any] = {}
    if args.ae is not None:
        changes["ae_title"] = check_ae_title(args.ae)
    if args.port is not None:
        changes["port"] = args.port
    if args.bind is not None:
        changes["bind"] = args.bind
    if args.allow_any:
        changes["allowed_callers"] = []
    elif args.allow is not None:
        changes["allowed_callers"] = list(dict.fromkeys(check_ae_title(a) for a in args.allow))
    if args.destination or args.remove_destination:
        added = [parse_destination(d) for d in args.destination]
        gone = {check_ae_title(a) for a in args.remove_destination} | {d.ae_title for d in added}
        changes["move_destinations"] = [
            d for d in node.move_destinations if d.ae_title not in gone] + added
    if args.no_tls:
        changes |= {"tls_cert_file": "", "tls_key_file": "", "tls_ca_file": ""}
    for option, name in (("tls_cert", "tls_cert_file"), ("tls_key", "tls_key_file"),
                         ("tls_ca", "tls_ca_file")):
        if getattr(args, option) is not None:
            changes[name] = str(Path(getattr(args, option)).expanduser().resolve())
    if args.listen_in_window is not None:
        changes["listen"] = args.listen_in_window == "on"
    if changes:
        settings.node = dataclasses.replace(node, **changes)  # checked by NodeSettings
        save_settings(home, settings)
    _show(args, settings.node, changed=bool(changes))
    return 0


def _show(args: argparse.Namespace, node: NodeSettings, changed: bool) -> None:
    if args.json:
        print_json(node.to_json() | {"changed": changed})
        return
    callers = ", ".join(node.allowed_callers) or "any"
    out = sys.stdout
    tls = f" (DICOM TLS, certificate {node.tls_cert_file})" if node.tls else ""
    out.write(f"AE title: {node.ae_title}\nlistens on: {node.bind}:{node.port}{tls}\n"
              f"allowed callers: {callers}\n"
              f"runs with the window: {'yes' if node.listen else 'no'}\n")
    if not node.move_destinations:
        out.write("C-MOVE destinations: none (add with --destination AE=HOST:PORT)\n")
    for d in node.move_destinations:
        out.write(f"C-MOVE destination: {d.ae_title} = {d.host}:{d.port}\n")


#: Seconds ``relay listen`` gives forwarding to finish when it is stopped (the rest stays
#: queued and goes on at the next start).
FORWARD_GRACE = 30.0


def _forwarder(store: Any, listener: Any) -> Any:
    """The forwarding rules applied to what the listener receives (None: no rule)."""
    from app.net.forward import Forwarder

    forwarder = Forwarder(store)
    if not forwarder.active():
        return None
    forwarder.attach(listener)
    resumed = forwarder.resume()
    rules = [r.name for r in forwarder.rules.rules if r.enabled]
    sys.stderr.write(f"relay: forwarding rules {', '.join(rules)} apply"
                     + (f"; {resumed} unfinished forward(s) resumed" if resumed else "") + "\n")
    return forwarder


def cmd_listen(args: argparse.Namespace) -> int:
    from app.net.dimse.listener import Listener, serve_forever

    store = open_store(args)
    node = load_settings(store.home).node
    changes: dict[str, Any] = {}
    if args.ae is not None:
        changes["ae_title"] = args.ae
    if args.port is not None:
        changes["port"] = args.port
    if args.bind is not None:
        changes["bind"] = args.bind
    node = dataclasses.replace(node, **changes)
    listener = Listener(store, node)
    if not args.json:
        lines = StudyLines(sys.stdout)
        listener.subscribe_arriving(lines.arriving)
        listener.subscribe(lines.received)
    forwarder = _forwarder(store, listener)
    host, port = listener.start()
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    callers = ", ".join(node.allowed_callers) or "any calling AE title"
    sys.stderr.write(f"relay: node {node.ae_title} listening on {host}:{port} ({callers}); "
                     "Ctrl-C stops it\n")
    sys.stderr.flush()
    serve_forever(listener, stop)
    totals = listener.tally.snapshot()
    counts = {k: totals.get(k, 0) for k in
              ("received", "stored", "duplicate", "conflict", "failed", "rejected")}
    forwarded: dict[str, int] = {}
    if forwarder is not None:
        forwarder.close(timeout=FORWARD_GRACE)
        forwarded = dict(forwarder.stats)
    if args.json:
        print_json({"ae_title": node.ae_title, "port": port} | counts
                   | ({"forwarded": forwarded} if forwarder is not None else {}))
    else:
        sys.stdout.write("node stopped: " + ", ".join(f"{v} {k}" for k, v in counts.items())
                         + "\n")
    return 0


class StudyLines:
    """What ``relay listen`` prints of each study, for a person watching the terminal: a line
    at its first instance, its count while it arrives (every
    :data:`app.net.dimse.receive.PROGRESS_SECONDS` at most), one when its association ends.
    Study UID, counts and calling AE title only: nothing about the patient. Called on the
    associations' threads."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self._lock = threading.Lock()
        self._started: set[tuple[str, str]] = set()  # (study, calling AE) arriving now

    def arriving(self, study: Any) -> None:
        key = (study.study_uid, study.calling_ae)
        with self._lock:
            if key not in self._started:
                self._started.add(key)
                line = f"arriving: study {study.study_uid} from {study.calling_ae}"
            else:
                line = (f"receiving: {study.instances} instance(s) of study {study.study_uid} "
                        f"from {study.calling_ae} so far")
            self._write(line)

    def received(self, study: Any) -> None:
        with self._lock:
            self._started.discard((study.study_uid, study.calling_ae))
            self._write(f"received {study.instances} instance(s) of study {study.study_uid} "
                        f"from {study.calling_ae} ({study.duplicates} duplicate, "
                        f"{study.failed} failed)")

    def _write(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()
