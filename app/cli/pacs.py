"""PACS subcommands (DIMSE): ``pacs add|list|test|remove``, ``query``, ``retrieve``, and the
``--pacs`` half of ``send``. pynetdicom is imported by the commands that use it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.main import TerminalProgress, cancel_on_sigint, open_store, print_json
from app.cli.net import say_why
from app.cli.storage import warn_low_disk
from app.errors import TransferError
from app.home import resolve_home
from app.net.queue import TransferQueue
from app.settings import HubProfile, load_settings, save_settings
from app.tasks import Progress

if TYPE_CHECKING:
    from app.net.dimse.client import DimseClient
    from app.settings import Settings


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    pacs = sub.add_parser("pacs", parents=[common],
                          help="PACS profiles (DIMSE): add, list, test, remove")
    pacs_sub = pacs.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)

    p = pacs_sub.add_parser("add", parents=[common], help="add (or update) a PACS",
                            description="Add or update a PACS. Relay calls it with its own AE "
                                        "title (relay node; default RELAY): the PACS must know "
                                        "that title and this computer's address.")
    p.add_argument("name")
    p.add_argument("--host", required=True, help="host name or address of the PACS")
    p.add_argument("--port", required=True, type=int, help="its DICOM port (often 104, 11112)")
    p.add_argument("--ae", required=True, metavar="CALLED_AE",
                   help="the PACS's AE title (case-sensitive)")
    p.add_argument("--tls", action="store_true", help="DICOM over TLS (certificate verified)")
    p.add_argument("--ca-file", help="PEM CA to trust besides the system's (with --tls)")
    p.add_argument("--cert", help="PEM certificate Relay presents (with --tls)")
    p.add_argument("--key", help="PEM private key of --cert (with --tls)")
    p.add_argument("--retrieve", choices=("get", "move"), default="get",
                   help="how studies are asked for by default: C-GET (works through NAT and "
                        "firewalls) or C-MOVE to Relay's node (the PACS must know Relay's AE "
                        "title, host and port)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_pacs_add)

    p = pacs_sub.add_parser("list", parents=[common], help="list the PACS")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_pacs_list)

    p = pacs_sub.add_parser("test", parents=[common],
                            help="C-ECHO (and a query) to a PACS; says what is wrong")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_pacs_test)

    p = pacs_sub.add_parser("remove", parents=[common], help="forget a PACS")
    p.add_argument("name")
    p.set_defaults(handler=cmd_pacs_remove)

    p = sub.add_parser("query", parents=[common], help="search a PACS (C-FIND)")
    p.add_argument("--pacs", required=True, metavar="NAME")
    p.add_argument("--patient-id", default="")
    p.add_argument("--name", default="", help="patient name, wildcards allowed: 'DOE^J*'")
    p.add_argument("--date", default="", help="YYYYMMDD or YYYYMMDD-YYYYMMDD")
    p.add_argument("--modality", default="")
    p.add_argument("--accession", default="")
    p.add_argument("--study", default="", metavar="STUDY_UID")
    p.add_argument("--series", action="store_true", help="list the series of --study")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_query)

    p = sub.add_parser("retrieve", parents=[common],
                       help="bring a study (or some series) from a PACS into the local store")
    p.add_argument("study", metavar="STUDY_UID")
    p.add_argument("--pacs", required=True, metavar="NAME")
    p.add_argument("--series", nargs="+", default=[], metavar="SERIES_UID")
    p.add_argument("--method", choices=("get", "move"), default="",
                   help="C-GET (works through NAT and firewalls) or C-MOVE to Relay's own "
                        "storage SCP (the PACS must know Relay's AE title, host and port); "
                        "default: the PACS profile's (relay pacs add --retrieve)")
    p.add_argument("--retry-for", type=float, metavar="SECONDS",
                   help="how long to keep retrying an unreachable PACS (default: settings)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_retrieve)


# -- profiles ---------------------------------------------------------------------------------
def cmd_pacs_add(args: argparse.Namespace) -> int:
    from app.net.dimse.association import client_ssl_context
    from app.net.dimse.pacs import endpoint

    home = resolve_home(getattr(args, "home", None))
    settings = load_settings(home)
    if (args.ca_file or args.cert or args.key) and not args.tls:
        raise TransferError("--ca-file, --cert and --key need --tls")
    if bool(args.cert) != bool(args.key):
        raise TransferError("--cert and --key go together")
    if not 0 < args.port < 65536:
        raise TransferError(f"--port {args.port} is not a TCP port")
    if not args.ae or len(args.ae) > 16 or "\\" in args.ae:
        raise TransferError("--ae must be 1 to 16 characters (no backslash)")

    def full(path: str | None) -> str:
        return str(Path(path).resolve()) if path else ""

    profile = HubProfile(name=args.name, kind="dimse", host=args.host, port=args.port,
                         ae_title=args.ae, tls=args.tls, ca_file=full(args.ca_file),
                         cert_file=full(args.cert), key_file=full(args.key),
                         retrieve=args.retrieve)
    target = endpoint(profile)
    if target.tls is not None:
        client_ssl_context(target.tls)  # unreadable or non-PEM files refused now
    old = settings.hub(args.name)
    if old is not None and not old.is_pacs:
        raise TransferError(f"'{args.name}' is a hub's name; choose another name for the PACS")
    settings.hubs = [h for h in settings.hubs if h.name != args.name] + [profile]
    save_settings(home, settings)
    if args.json:
        print_json({"pacs": profile.name, "host": profile.host, "port": profile.port,
                    "ae_title": profile.ae_title, "tls": profile.tls, "updated": old is not None})
    else:
        verb = "updated" if old is not None else "added"
        sys.stdout.write(f"PACS '{profile.name}' {verb}: {target.where}"
                         f"{' (TLS)' if profile.tls else ''}\n")
    return 0


def cmd_pacs_list(args: argparse.Namespace) -> int:
    from app.net.dimse.pacs import calling_ae

    settings = load_settings(resolve_home(getattr(args, "home", None)))
    rows = [{"name": p.name, "host": p.host, "port": p.port, "ae_title": p.ae_title,
             "tls": p.tls, "ca_file": p.ca_file, "cert_file": p.cert_file,
             "retrieve": p.retrieve} for p in settings.pacs]
    if args.json:
        print_json({"pacs": rows, "calling_ae": calling_ae(settings)})
        return 0
    if not rows:
        sys.stdout.write("no PACS yet; add one with: relay pacs add NAME --host H --port P "
                         "--ae AE\n")
    for r in rows:
        sys.stdout.write(f"{r['name']:<12} {r['ae_title']}@{r['host']}:{r['port']}"
                         f"{'  TLS' if r['tls'] else ''}\n")
    sys.stdout.write(f"Relay calls as: {calling_ae(settings)}\n")
    return 0


def cmd_pacs_test(args: argparse.Namespace) -> int:
    from app.net.dimse.pacs import check_pacs

    home = resolve_home(getattr(args, "home", None))
    check = check_pacs(load_settings(home), args.name, home)  # each association audited
    if args.json:
        print_json({"pacs": args.name, "ok": check.ok, "problem": None if check.ok else check.kind,
                    "message": check.message, "seconds": round(check.seconds, 3)})
    else:
        sys.stdout.write(f"{args.name}: {check.headline}: {check.message}\n")
    return 0 if check.ok else 1


def cmd_pacs_remove(args: argparse.Namespace) -> int:
    from app.net.dimse.pacs import profile

    home = resolve_home(getattr(args, "home", None))
    settings = load_settings(home)
    profile(settings, args.name)
    settings.hubs = [h for h in settings.hubs if h.name != args.name]
    save_settings(home, settings)
    sys.stdout.write(f"PACS '{args.name}' removed\n")
    return 0


def pacs_client(settings: Settings, name: str, home: Path | None = None) -> DimseClient:
    """The PACS called ``name`` (``home``: whose audit trail records the associations and
    searches)."""
    from app.net.dimse.pacs import connect

    return connect(settings, name, home)


# -- query ------------------------------------------------------------------------------------
def cmd_query(args: argparse.Namespace) -> int:
    from app.net.dimse.query import StudyFilter, find_series, find_studies

    home = resolve_home(getattr(args, "home", None))
    settings = load_settings(home)
    client = pacs_client(settings, args.pacs, home)  # each search audited (110112)
    progress = Progress(f"Searching {args.pacs}")
    cancel_on_sigint(progress)
    rows: list[dict[str, Any]] = []
    if args.series:
        if not args.study:
            raise TransferError("--series lists the series of one study: give --study UID")
        for s in find_series(client, args.study, progress):
            rows.append(s.to_json())
            if not args.json:
                sys.stdout.write(f"{s.series_instance_uid}  {s.modality:<3} "
                                 f"#{s.series_number or '-'}  {s.instances or '?'} images  "
                                 f"{s.series_description}\n")
                sys.stdout.flush()
        if args.json:
            print_json({"series": rows})
        return 0
    where = StudyFilter(patient_id=args.patient_id, name=args.name, date=args.date,
                        modality=args.modality, accession=args.accession, study=args.study)
    for st in find_studies(client, where, progress):
        rows.append(st.to_json())
        if not args.json:
            sys.stdout.write(f"{st.study_instance_uid}  {st.study_date or '-':<8}  "
                             f"{'/'.join(st.modalities) or '-':<6} {st.patient_id:<12} "
                             f"{st.patient_name:<24} {st.instances or '?'} images  "
                             f"{st.study_description}\n")
            sys.stdout.flush()
    if args.json:
        print_json({"studies": rows})
    elif not rows:
        sys.stdout.write("no study matches\n")
    return 0


# -- transfers --------------------------------------------------------------------------------
# A PACS is a peer (profile kind ``dimse``): ``send --pacs`` and ``retrieve`` are the ordinary
# send and fetch jobs (app.net.send.Sender, app.net.fetch.Download) over its DimsePeer.
def cmd_send_pacs(args: argparse.Namespace) -> int:
    from app.cli.net import send_target, sent_study
    from app.net.dimse.pacs import peer
    from app.net.send import Sender, send_job

    store = open_store(args)
    study_uid = send_target(store, args)
    settings = load_settings(store.home)
    target = peer(settings, args.pacs, home=store.home)
    queue = TransferQueue(store.home)
    job = send_job(store, queue, args.pacs, study_uid, args.series)
    progress = Progress(f"Sending to {args.pacs}")
    cancel_on_sigint(progress)
    bar = TerminalProgress(progress, enabled=None if not args.json else False)
    try:
        result = Sender(store, queue, target, settings.transfer, progress,
                        give_up=_give_up(args, settings.transfer.give_up_seconds)).run(job.id)
    finally:
        bar.close()
    if args.json:
        print_json(result.to_json() | {"message": result.message} | sent_study(args, study_uid))
    else:
        mb = result.bytes / 1e6
        sys.stdout.write(f"{result.message} ('{args.pacs}', {mb:.1f} MB in "
                         f"{result.seconds:.1f} s)\n")
    if result.state in ("verified", "sent"):
        return 0
    return say_why(result)


def cmd_retrieve(args: argparse.Namespace) -> int:
    from app.net.dimse.pacs import peer
    from app.net.fetch import Download, fetch_job
    from app.net.send import TransferResult

    store = open_store(args)
    warn_low_disk(store.home)
    settings = load_settings(store.home)
    source = peer(settings, args.pacs, method=args.method, home=store.home)
    queue = TransferQueue(store.home)
    job = fetch_job(queue, args.pacs, args.study, args.series, method=args.method)
    progress = Progress(f"Retrieving from {args.pacs}")
    cancel_on_sigint(progress)
    bar = TerminalProgress(progress, enabled=None if not args.json else False)
    download = Download(store, queue, source, args.pacs, args.study, settings.transfer,
                        progress, give_up=_give_up(args, settings.transfer.give_up_seconds),
                        series_uids=args.series, method=args.method)
    try:
        result = download.run(job.id)
    except TransferError as exc:  # nothing of it on the PACS
        queue.set_state(job.id, "failed", str(exc))
        result = TransferResult(job=job.id, state="failed", instances=0, verified=0,
                                message=str(exc))
    finally:
        bar.close()
    stored = result.verified
    if args.json:
        print_json({"job": result.job, "state": result.state, "instances": result.instances,
                    "stored": stored, "failed": len(result.missing), "bytes": result.bytes,
                    "seconds": round(result.seconds, 3)})
    else:
        mb = result.bytes / 1e6
        sys.stdout.write(f"{stored} of {result.instances} instances retrieved from "
                         f"'{args.pacs}' ({mb:.1f} MB in {result.seconds:.1f} s)\n")
    if result.state == "verified":
        return 0
    return say_why(result)


def _give_up(args: argparse.Namespace, default: float) -> float:
    return float(args.retry_for) if getattr(args, "retry_for", None) is not None else default
