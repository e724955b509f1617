"""Store subcommands: ``import``, ``ls``, ``demo``, ``synth``.

The importer and the generator (pydicom and its codecs, ~27 MB) are imported by the commands
that use them, not when the parser is built: ``relay load`` of an uncompressed series never
needs them."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.main import TerminalProgress, cancel_on_sigint, open_store, print_json, printable
from app.cli.storage import warn_low_disk
from app.store.local import Store
from app.tasks import Progress

if TYPE_CHECKING:
    from app.imports.importer import ImportReport

#: ``relay synth --syntax`` names (the keys of :data:`app.dicom.synth.SYNTAXES`; a test checks).
SYNTAX_NAMES = ("explicit", "j2k", "jpeg-lossless", "jpegls", "rle")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("import", parents=[common], help="import folders, CDs, zips, files")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--no-forward", action="store_true",
                   help="do not apply the forwarding rules (when 'relay rules add --imports on' "
                        "asked for them)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_import)

    p = sub.add_parser("ls", parents=[common], help="list the studies in the local store")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_ls)

    p = sub.add_parser("demo", parents=[common],
                       help="generate the synthetic demo study (head CT + CTA) into the store")
    p.add_argument("--slices", type=int, default=160)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("synth", parents=[common],
                       help="write a synthetic CT series (phantom) as DICOM files")
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--slices", type=int, default=400)
    p.add_argument("--size", type=int, default=512, help="rows and columns")
    p.add_argument("--step", type=float, default=0.5, help="slice step in mm")
    p.add_argument("--tilt", type=float, default=0.0, help="gantry tilt in degrees")
    p.add_argument("--phantom", choices=["head", "cta"], default="head")
    p.add_argument("--syntax", choices=SYNTAX_NAMES, default="explicit")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_synth)


def cmd_import(args: argparse.Namespace) -> int:
    from app.imports.importer import import_paths
    from app.net.forward import Forwarder

    store = open_store(args)
    warn_low_disk(store.home)
    forwarder = Forwarder(store)
    forwarding = forwarder.rules.imports and forwarder.active() and not args.no_forward
    progress = Progress("Importing")
    cancel_on_sigint(progress)
    bar = TerminalProgress(progress, enabled=None if not args.json else False)
    try:
        report = import_paths(store, args.paths, progress,
                              on_stored=forwarder.imported if forwarding else None)
    finally:
        bar.close()
    if forwarding:  # the import is done: what matched goes on to its targets, then stop
        for uid in report.study_uids:
            forwarder.study_done(uid)
        forwarder.close(timeout=forwarder.settings.transfer.give_up_seconds)
    if args.json:
        print_json(report.to_json(store) | ({"forwarded": dict(forwarder.stats)}
                                            if forwarding else {}))
    else:
        print_import_summary(report, store)
        if forwarding and forwarder.stats["offered"]:
            sys.stdout.write(f"forwarded by the rules: {forwarder.stats['sent']} instance(s) "
                             "sent (see relay queue)\n")
    if report.stopped:
        sys.stderr.write(f"relay: {printable(report.stopped)}\n")
        return 1
    return 130 if report.cancelled else 0


def print_import_summary(report: ImportReport, store: Store) -> None:
    from app.imports.importer import studies_json
    from app.imports.summary import is_media_index, nothing_words

    out = sys.stdout
    parts = [f"{report.imported} imported"]
    if report.duplicates:
        parts.append(f"{report.duplicates} already in the store")
    if report.conflicts:
        parts.append(f"{report.conflicts} CONFLICTING (same UID, different bytes; both kept)")
    if report.failed:
        parts.append(f"{len(report.failed)} failed")
    indexes = sum(1 for p in report.skipped if is_media_index(p))
    if len(report.skipped) > indexes:
        parts.append(f"{len(report.skipped) - indexes} skipped (not DICOM)")
    if indexes:
        parts.append(f"{indexes} DICOMDIR{'s' if indexes != 1 else ''} read")
    out.write(", ".join(parts) + f" in {report.seconds:.1f} s")
    out.write(" (cancelled)\n" if report.cancelled else "\n")
    if nothing_words(report):
        out.write(f"{printable(nothing_words(report))}\n")
    for problem in report.failed:
        out.write(f"  failed: {printable(problem.path)}: {printable(problem.reason)}\n")
    for problem in report.conflicting:
        out.write(f"  conflicting: {printable(problem.path)}: {printable(problem.reason)}\n")
    for problem in report.unsendable[:10]:
        out.write(f"  not sendable: {printable(problem.path)}: {printable(problem.reason)}\n")
    if len(report.unsendable) > 10:
        out.write(f"  ... and {len(report.unsendable) - 10} more not sendable\n")
    if report.skipped:
        shown = report.skipped[:10]
        for problem in shown:
            out.write(f"  skipped: {printable(problem.path)}: {printable(problem.reason)}\n")
        if len(report.skipped) > len(shown):
            out.write(f"  ... and {len(report.skipped) - len(shown)} more skipped\n")
    _print_studies(studies_json(store, report.study_uids))


def _print_studies(studies: list[dict[str, Any]]) -> None:
    for study in studies:
        date = study["study_date"] or "no date"
        sys.stdout.write(printable(
            f"{study['patient_name'] or '(no name)'}  [{study['patient_id'] or 'no ID'}]  "
            f"{date}  {study['study_description'] or '(no description)'}  "
            f"{'/'.join(study['modalities'])}"
        ) + "\n")
        for s in study["series"]:
            number = s["series_number"] if s["series_number"] is not None else "-"
            sys.stdout.write(printable(
                f"    #{number:<4} {s['modality']:<3} {s['instances']:>5} images  "
                f"{s['series_description']}"
            ) + "\n")
            for issue in s.get("geometry_issues", []):
                sys.stdout.write(f"          ! {issue}\n")


def cmd_ls(args: argparse.Namespace) -> int:
    from app.imports.importer import studies_json

    store = open_store(args, reading=True)
    studies = studies_json(store)
    if args.json:
        print_json({"studies": studies})
    else:
        counts = store.counts()
        sys.stdout.write(
            f"{counts['studies']} studies, {counts['series']} series, "
            f"{counts['instances']} instances in {store.home}\n"
        )
        _print_studies(studies)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from app.dicom.synth import demo_study
    from app.imports.importer import import_paths

    store = open_store(args)
    progress = Progress("Generating demo")
    bar = TerminalProgress(progress, enabled=None if not args.json else False)
    with tempfile.TemporaryDirectory(dir=store.tmp) as tmp:
        demo_study(Path(tmp), progress, slices=args.slices)
        report = import_paths(store, [tmp], progress)
    bar.close()
    if args.json:
        print_json(report.to_json(store))
    else:
        print_import_summary(report, store)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from app.dicom.synth import SeriesSpec, generate_series

    spec = SeriesSpec(slices=args.slices, rows=args.size, columns=args.size,
                      slice_step=args.step, tilt_deg=args.tilt, phantom=args.phantom,
                      transfer_syntax=args.syntax, seed=args.seed)
    progress = Progress("Generating")
    bar = TerminalProgress(progress)
    paths = generate_series(args.out, spec, progress)
    bar.close()
    sys.stdout.write(f"{len(paths)} files in {args.out}\n")
    return 0
