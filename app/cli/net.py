"""Hub subcommands: ``hub add|list|test|remove``, ``send``, ``fetch``, ``queue``, ``dev-hub``.

The keyring, TLS and HTTP, and the fetch path (pydicom, through the importer) are imported by
the commands that use them, not when the parser is built for every other command."""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.main import TerminalProgress, cancel_on_sigint, open_store, print_json
from app.cli.storage import warn_low_disk
from app.errors import SecretsError, TransferError
from app.home import resolve_home
from app.net.queue import TransferQueue
from app.settings import HubProfile, load_settings, save_settings
from app.tasks import Progress

if TYPE_CHECKING:
    from app.net.send import TransferResult
    from app.store.local import Store


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    hub = sub.add_parser("hub", parents=[common], help="hub profiles: add, list, test, remove")
    hub_sub = hub.add_subparsers(dest="hub_command", metavar="ACTION", required=True)

    p = hub_sub.add_parser(
        "add", parents=[common], help="add (or update) a DICOMweb hub",
        description="Add or update a hub. Secrets are read from standard input and kept in the "
                    "system keyring; without a keyring service, set RELAY_KEYRING=encrypted-file "
                    "and RELAY_KEYRING_PASSPHRASE to keep them in an encrypted file instead.")
    p.add_argument("name")
    p.add_argument("--url", required=True, help="DICOMweb base URL, e.g. https://hub/dicom-web")
    p.add_argument("--user", help="user name (basic authentication)")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input")
    secret.add_argument("--token-stdin", action="store_true",
                        help="read a bearer token from standard input")
    p.add_argument("--ca-file", help="PEM file of the CA that signed the hub's certificate")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_hub_add)

    p = hub_sub.add_parser("list", parents=[common], help="list the hubs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_hub_list)

    p = hub_sub.add_parser("test", parents=[common],
                           help="check a hub with one search round trip; says what is wrong")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_hub_test)

    p = hub_sub.add_parser("remove", parents=[common], help="forget a hub and its secret")
    p.add_argument("name")
    p.set_defaults(handler=cmd_hub_remove)

    for name, helptext, handler in (
        ("send", "send a study (or some of its series) to a hub, verified", cmd_send),
        ("fetch", "download a study from a hub into the local store", cmd_fetch),
    ):
        p = sub.add_parser(name, parents=[common], help=helptext)
        p.add_argument("study", metavar="STUDY_UID")
        if name == "send":
            p.add_argument("series", nargs="*", metavar="SERIES_UID")
        if name == "send":
            target = p.add_mutually_exclusive_group(required=True)
            target.add_argument("--hub", metavar="NAME", help="a DICOMweb hub (STOW-RS)")
            target.add_argument("--pacs", metavar="NAME", help="a PACS (C-STORE; 'relay pacs')")
            p.add_argument("--original", action="store_true",
                           help="send an outside study as it came even though a reconciled "
                                "copy exists (by default the copy is sent instead)")
        else:
            p.add_argument("--hub", required=True, metavar="NAME")
        if name == "send":
            p.add_argument("--verify-bytes", action="store_true",
                           help="after the send, fetch every instance back from the hub and "
                                "compare its bytes (SHA-256) with the local file")
        p.add_argument("--retry-for", type=float, metavar="SECONDS",
                       help="how long to keep retrying an unreachable hub (default: settings, "
                            "600 s); the job stays queued and resumes on the next run")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.set_defaults(handler=handler)

    p = sub.add_parser("queue", parents=[common], help="list transfer jobs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_queue)

    p = sub.add_parser("dev-hub", parents=[common],
                       help="run a local Orthanc hub for trying Relay on one machine")
    p.add_argument("--port", type=int, default=8042)
    p.add_argument("--dir", type=Path, help="hub storage (default: HOME/dev-hub)")
    p.add_argument("--user", help="turn on basic authentication with this user")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password for --user from standard input")
    p.add_argument("--token-stdin", action="store_true",
                   help="turn on bearer-token authentication; the token from standard input")
    p.set_defaults(handler=cmd_dev_hub)


# -- hub profiles ------------------------------------------------------------------------------
def _read_secret(what: str) -> str:
    if sys.stdin.isatty():  # typed: do not echo it
        secret = getpass.getpass(f"{what.capitalize()}: ")
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise TransferError(f"no {what} on standard input")
    return secret


def cmd_hub_add(args: argparse.Namespace) -> int:
    from app.net.secrets import SecretStore

    home = resolve_home(getattr(args, "home", None))
    settings = load_settings(home)
    if args.user and not args.password_stdin:
        raise TransferError("--user needs --password-stdin (the password is never an argument)")
    if args.password_stdin and not args.user:
        raise TransferError("--password-stdin needs --user")
    auth = "basic" if args.user else "bearer" if args.token_stdin else "none"
    ca_file = str(Path(args.ca_file).resolve()) if args.ca_file else ""
    from app.net.http import ssl_context

    if ca_file:
        ssl_context(ca_file)  # refuses an unreadable or non-PEM file now, not at send time
    profile = HubProfile(name=args.name, url=args.url.rstrip("/"), auth=auth,
                         user=args.user or "", ca_file=ca_file)
    _check_url(profile)
    secrets = SecretStore(home, settings.secrets)
    old = settings.hub(args.name)
    if old is not None and old.is_pacs:
        raise TransferError(f"a PACS is called '{args.name}'; choose another name for the hub")
    if auth != "none":
        secrets.set(args.name, _read_secret("password" if auth == "basic" else "token"))
    elif old is not None and old.auth != "none":
        secrets.delete(args.name)
    settings.hubs = [h for h in settings.hubs if h.name != args.name] + [profile]
    save_settings(home, settings)
    where = secrets.describe() if auth != "none" else "no secret"
    if args.json:
        print_json({"hub": profile.name, "url": profile.url, "auth": auth,
                    "updated": old is not None, "secret": where})
    else:
        verb = "updated" if old is not None else "added"
        sys.stdout.write(f"hub '{profile.name}' {verb}: {profile.url} ({auth}; secret: {where})\n")
    return 0


def _check_url(profile: HubProfile) -> None:
    """Refuse a URL that is not http(s) before anything is stored."""
    from app.net.http import HubSession

    HubSession(profile)


def cmd_hub_list(args: argparse.Namespace) -> int:
    from app.net.secrets import SecretStore

    home = resolve_home(getattr(args, "home", None))
    settings = load_settings(home)
    where = SecretStore(home, settings.secrets).describe()
    rows = [{"name": h.name, "url": h.url, "auth": h.auth, "user": h.user, "ca_file": h.ca_file}
            for h in settings.web_hubs]  # the PACS: 'relay pacs list'
    if args.json:
        print_json({"hubs": rows, "secrets": where})
        return 0
    if not rows:
        sys.stdout.write("no hubs yet; add one with: relay hub add NAME --url URL\n")
    for r in rows:
        auth = f"{r['auth']} ({r['user']})" if r["user"] else r["auth"]
        extra = f"  CA {r['ca_file']}" if r["ca_file"] else ""
        sys.stdout.write(f"{r['name']:<12} {r['url']}  auth: {auth}{extra}\n")
    sys.stdout.write(f"secrets: {where}\n")
    return 0


def cmd_hub_test(args: argparse.Namespace) -> int:
    from app.net import hubs

    home = resolve_home(getattr(args, "home", None))
    check = hubs.check_hub(hubs.connect(home, args.name))
    if args.json:
        print_json({"hub": args.name, "ok": check.ok, "problem": None if check.ok else check.kind,
                    "message": check.message, "seconds": round(check.seconds, 3)})
    else:
        label = check.headline
        sys.stdout.write(f"{args.name}: {label}: {check.message}\n")
    return 0 if check.ok else 1


def cmd_hub_remove(args: argparse.Namespace) -> int:
    from app.net import hubs
    from app.net.secrets import SecretStore

    home = resolve_home(getattr(args, "home", None))
    settings = load_settings(home)
    profile = hubs.profile(settings, args.name)
    if profile.auth != "none":
        try:
            SecretStore(home, settings.secrets).delete(profile.name)
        except SecretsError as exc:
            sys.stderr.write(f"relay: the hub's secret could not be deleted: {exc}\n")
    settings.hubs = [h for h in settings.hubs if h.name != args.name]
    save_settings(home, settings)
    sys.stdout.write(f"hub '{args.name}' removed\n")
    return 0


# -- transfers -------------------------------------------------------------------------------
def cmd_send(args: argparse.Namespace) -> int:
    from app.net import hubs

    if getattr(args, "pacs", None):
        from app.cli.pacs import cmd_send_pacs

        if args.verify_bytes:
            raise TransferError("--verify-bytes needs a DICOMweb hub (--hub): a PACS cannot "
                                "hand its copy back over C-STORE")

        return cmd_send_pacs(args)
    from app.net.send import run_send, send_job

    store = open_store(args)
    study_uid = send_target(store, args)
    settings = load_settings(store.home)
    if args.verify_bytes:
        settings.transfer.verify_bytes = True
    peer = hubs.connect(store.home, args.hub, settings,
                          pool_size=settings.transfer.in_flight + 1)
    queue = TransferQueue(store.home)
    job = send_job(store, queue, args.hub, study_uid, args.series)
    progress = Progress(f"Sending to {args.hub}")
    cancel_on_sigint(progress)
    bar = TerminalProgress(progress, enabled=None if not args.json else False)
    try:
        result = run_send(store, queue, peer, job.id, settings.transfer, progress,
                          give_up=_give_up(args, settings.transfer.give_up_seconds))
    finally:
        bar.close()
    return _report(args, result, "sent to", args.hub, sent_study(args, study_uid))


def send_target(store: Store, args: argparse.Namespace) -> str:
    """The study ``relay send`` sends (:func:`app.workflow.sendable.send_target`): said on
    stderr when it is the reconciled copy of the one asked for."""
    from app.workflow.sendable import send_target as target_of

    target = target_of(store, args.study, original=args.original, series=bool(args.series))
    if target.redirected:
        sys.stderr.write(f"relay: {target.note}\n")
    return target.study_uid


def sent_study(args: argparse.Namespace, study_uid: str) -> dict[str, str]:
    """What ``--json`` adds when the send went to the reconciled copy of the study asked for."""
    if study_uid == args.study:
        return {}
    return {"study_instance_uid": study_uid, "redirected_from": args.study}


def cmd_fetch(args: argparse.Namespace) -> int:
    from app.net import hubs
    from app.net.fetch import Download

    store = open_store(args)
    warn_low_disk(store.home)
    settings = load_settings(store.home)
    peer = hubs.connect(store.home, args.hub, settings, pool_size=3)
    queue = TransferQueue(store.home)
    progress = Progress(f"Fetching from {args.hub}")
    cancel_on_sigint(progress)
    bar = TerminalProgress(progress, enabled=None if not args.json else False)
    download = Download(store, queue, peer, args.hub, args.study, settings.transfer, progress,
                        give_up=_give_up(args, settings.transfer.give_up_seconds))
    try:
        result = download.run()
    finally:
        bar.close()
    return _report(args, result, "fetched from", args.hub)


def _give_up(args: argparse.Namespace, default: float) -> float:
    return float(args.retry_for) if args.retry_for is not None else default


def _report(args: argparse.Namespace, result: TransferResult, verb: str, hub: str,
            extra: dict[str, str] | None = None) -> int:
    if args.json:
        print_json(result.to_json() | (extra or {}))
    else:
        mb = result.bytes / 1e6
        rate = mb / result.seconds if result.seconds > 0 else 0.0
        sys.stdout.write(f"{result.summary} {verb} '{hub}' "
                         f"({mb:.1f} MB in {result.seconds:.1f} s, {rate:.1f} MB/s)\n")
        for uid in result.missing[:20]:
            sys.stdout.write(f"  missing: {uid}\n")
        if len(result.missing) > 20:
            sys.stdout.write(f"  ... and {len(result.missing) - 20} more\n")
    return say_why(result) if result.state != "verified" else 0


def say_why(result: TransferResult) -> int:
    """On stderr, why a transfer did not complete and, when its job is kept (waiting, stuck,
    paused), that the same command resumes it; a failed job is over. Returns the exit code, 1."""
    if result.message:
        sys.stderr.write(f"relay: {result.message}\n")
    if result.resumable:
        sys.stderr.write(f"relay: job {result.job} is kept; run the same command again to "
                         "resume it\n")
    return 1


def cmd_queue(args: argparse.Namespace) -> int:
    home = resolve_home(getattr(args, "home", None))
    jobs = TransferQueue(home).jobs()
    rows = [{"job": j.id, "kind": j.kind, "hub": j.hub, "study": j.study_uid, "state": j.state,
             "instances": j.total, "done": j.count("sent", "verified"),
             "verified": j.count("verified"), "failed": j.count("failed"), "bytes": j.bytes,
             "message": j.message} for j in jobs]
    if args.json:
        print_json({"jobs": rows})
        return 0
    for r in rows:
        sys.stdout.write(f"{r['job']}  {r['kind']:<5} {r['hub']:<10} {r['state']:<9} "
                         f"{r['verified']}/{r['instances']} verified  {r['message']}\n")
    return 0


# -- dev hub ---------------------------------------------------------------------------------
def cmd_dev_hub(args: argparse.Namespace) -> int:
    from app.net.devhub import HubConfig, OrthancHub, find_orthanc

    find_orthanc()  # names the Debian packages to install when missing
    home = resolve_home(getattr(args, "home", None))
    users = {}
    tokens: tuple[str, ...] = ()
    if args.user and args.token_stdin:
        raise TransferError("give either --user (basic) or --token-stdin (bearer), not both")
    if args.user:
        if not args.password_stdin:
            raise TransferError("--user needs --password-stdin")
        users[args.user] = _read_secret("password")
    elif args.token_stdin:
        tokens = (_read_secret("token"),)
    storage = (args.dir or home / "dev-hub").resolve()
    hub = OrthancHub(HubConfig(storage=storage, http_port=args.port, users=users,
                               tokens=tokens))
    hub.start()
    auth = f" --user {args.user} --password-stdin" if args.user else \
        " --token-stdin" if tokens else ""
    sys.stdout.write(
        f"local hub running at {hub.url} (this machine only; storage {storage})\n"
        f"add it with:  relay hub add local --url {hub.url}{auth}\n"
        "Ctrl-C stops it.\n")
    sys.stdout.flush()
    stop = {"now": False}

    def on_signal(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop["now"] and hub.running:
            time.sleep(0.2)
    finally:
        crashed = not hub.running
        hub.stop()
    if crashed:
        sys.stderr.write(f"relay: the local hub exited; see {hub.log_path}\n")
        return 1
    sys.stdout.write("local hub stopped\n")
    return 0
