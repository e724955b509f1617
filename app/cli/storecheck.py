"""Store maintenance subcommands: ``check`` (verify files against the index, optionally
repair) and ``reindex`` (rebuild the index from the stored files).

``relay check`` exits 0 when the store is sound and 1 when it found a problem (also when
``--repair`` fixed it, so a script sees that something was wrong)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from app.cli.main import open_store, print_json, printable
from app.home import resolve_home
from app.store import lock

if TYPE_CHECKING:
    from app.store.check import CheckReport


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("check", parents=[common],
                       help="verify every stored file against the index (SHA-256, orphans)")
    p.add_argument("--repair", action="store_true",
                   help="index orphan DICOM files, remove other orphans, drop rows of "
                        "missing files")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser("reindex", parents=[common],
                       help="rebuild the store index from the stored files (the old one is "
                            "kept as index.sqlite.corrupt)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_reindex)


def cmd_check(args: argparse.Namespace) -> int:
    from app.store.check import check_store

    if not args.repair:  # only reads: beside other Relays (an import's newest files may show
        return _checked(args, check_store(open_store(args)))  # as orphans for a moment)
    home = resolve_home(getattr(args, "home", None))
    with lock.exclusive(home, "relay check --repair"):
        store = open_store(args)
        try:
            return _checked(args, check_store(store, repair=True))
        finally:
            store.close()


def _checked(args: argparse.Namespace, report: CheckReport) -> int:
    if args.json:
        print_json(report.to_json())
    else:
        _print_report(report.to_json())
    return 0 if report.sound else 1


def cmd_reindex(args: argparse.Namespace) -> int:
    from app.store.reindex import rebuild_index

    report = rebuild_index(resolve_home(getattr(args, "home", None)))
    if args.json:
        print_json(report.to_json())
        return 0
    sys.stdout.write(f"{report.indexed} files indexed, {report.conflicts} conflicts, "
                     f"{len(report.problems)} not DICOM (left in place)\n")
    for problem in report.problems:
        sys.stdout.write(f"  not indexed: {printable(problem)}\n")
    if report.kept_aside:
        sys.stdout.write(f"old index kept as {printable(report.kept_aside)}\n")
    return 0


def _print_report(found: dict[str, Any]) -> None:
    out = sys.stdout
    out.write(f"{found['checked']} indexed files checked: "
              f"{len(found['missing'])} missing, {len(found['altered'])} altered, "
              f"{len(found['orphans'])} orphans\n")
    for key in ("missing", "altered", "orphans", "indexed", "removed", "errors"):
        for item in found[key]:
            out.write(f"  {key}: {printable(item)}\n")
    if found["dropped_rows"]:
        out.write(f"  {found['dropped_rows']} index rows of missing files removed\n")
    out.write("store is sound\n" if found["sound"] else "store has problems\n")
