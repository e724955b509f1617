"""Technologist subcommands: ``worklist``, ``reconcile``, ``deidentify``, ``export``,
``audit``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.cli.main import TerminalProgress, open_store, print_json
from app.tasks import Progress

#: ``--option`` / ``--deidentify`` names (:data:`app.workflow.deid_profile.OPTIONS`; a test
#: checks): named here so that building the parser imports no pydicom.
OPTIONS = ("retain-dates", "retain-patient-characteristics", "retain-device",
           "clean-descriptors", "retain-uids", "retain-institution")
#: ``relay export --layout`` (:data:`app.workflow.export.LAYOUTS`; a test checks).
LAYOUTS = ("fileset", "folder")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("deidentify", parents=[common],
                       help="de-identify a study into a new study (PS3.15 Basic profile)")
    p.add_argument("study", metavar="STUDY", help="Study Instance UID")
    p.add_argument("--option", action="append", default=[], choices=OPTIONS,
                   help="a PS3.15 profile option (repeat for several)")
    p.add_argument("--pseudonym", default="", help="the new patient name and ID")
    p.add_argument("--include-burned-in", action="store_true",
                   help="also take images that may carry burned-in text (pixels unchanged)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_deidentify)

    p = sub.add_parser("audit", parents=[common], help="the audit record of this home")
    p.add_argument("--study", default="", help="only events of this Study Instance UID")
    p.add_argument("--since", default="",
                   help="only events at or after this time (ISO 8601: 2026-12-03 or "
                        "2026-12-03T14:00+01:00; without an offset: local time)")
    p.add_argument("--verify", action="store_true",
                   help="check the hash chain; exit 1 when it is broken")
    p.add_argument("--send", action="store_true",
                   help="send the events not sent yet to the audit repository (settings "
                        "'audit') now; exit 1 when it cannot be reached")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_audit)

    p = sub.add_parser("timeline", parents=[common],
                       help="a study's way from the scanner to the first image, stage by stage")
    p.add_argument("study", metavar="STUDY", help="Study Instance UID")
    p.add_argument("--with", dest="also", action="append", default=[], metavar="HOME",
                   help="also read the audit record of this Relay home (e.g. the hub "
                        "workstation's, copied here); repeat for several")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_timeline)

    register_reconcile(sub, common)

    p = sub.add_parser("export", parents=[common],
                       help="write studies out: a disc file-set (IHE PDI: DICOMDIR, "
                            "README.TXT, INDEX.HTM) and ISO, or a plain folder")
    p.add_argument("studies", nargs="+", metavar="STUDY", help="Study Instance UIDs")
    p.add_argument("--to", required=True,
                   help="fileset: the disc goes here, or into a new DICOM_<date>_<n> folder "
                        "in it when it is not empty; folder: study folders go inside it")
    p.add_argument("--layout", choices=LAYOUTS, default="fileset",
                   help="fileset (default): a disc, DICOMDIR at the root; folder: "
                        "<date>_<study>/<series>_<modality>/<n>.dcm, no patient data in names")
    p.add_argument("--series", nargs="+", metavar="SERIES", help="only these series")
    p.add_argument("--iso", help="also write an ISO 9660 image to this file")
    p.add_argument("--deidentify", nargs="*", choices=OPTIONS, metavar="OPTION",
                   help="de-identify on the way out, with these profile options")
    p.add_argument("--pseudonym", default="", help="with --deidentify: patient name and ID")
    p.add_argument("--burn", action="store_true",
                   help="hand the ISO to the disc burner (needs --iso)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_export)


def cmd_deidentify(args: argparse.Namespace) -> int:
    from app.workflow.deidentify import deidentify_study
    from app.workflow.derive import WorkflowError

    store = open_store(args)
    progress = Progress("De-identifying")
    bar = TerminalProgress(progress, enabled=None if not args.json else False)
    try:
        result = deidentify_study(store, args.study, options=tuple(args.option),
                                  pseudonym=args.pseudonym,
                                  include_burned_in=args.include_burned_in, progress=progress)
    except (WorkflowError, ValueError) as exc:
        bar.close()
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    bar.close()
    if args.json:
        print_json(result.to_json())
    else:
        print(f"{result.instances} instances de-identified into study "
              f"{result.deidentified_study_uid or '(none)'}")
        for e in result.excluded:
            print(f"  excluded {e.sop_instance_uid}: {e.reason}")
        for f in result.failed:
            print(f"  failed {f.path}: {f.reason}")
    return 0 if not result.failed else 1


def cmd_audit(args: argparse.Namespace) -> int:
    from app.home import resolve_home
    from app.workflow import audit

    home = resolve_home(getattr(args, "home", None))
    try:
        since = audit.parse_time(args.since) if args.since else None
    except ValueError as exc:
        print(f"relay: --since: {exc}", file=sys.stderr)
        return 2
    events = list(audit.select(home, study_uid=args.study, since=since))
    out: dict[str, Any] = {"events": events}
    code = 0
    if args.send:
        from app.workflow.audit_syslog import SyslogError, ship

        try:
            out["sent"] = ship(home)
        except SyslogError as exc:
            print(f"relay: {exc}", file=sys.stderr)
            out["sent"], code = 0, 1
    if args.verify:
        v = audit.verify(home)
        out["verified"] = {"ok": v.ok, "lines": v.lines, "bad_line": v.bad_line,
                           "reason": v.reason}
        code = code if v.ok else 1
    if args.json:
        print_json(out)
    else:
        for e in events:
            print(f"{e['time']}  {e['event']:<11} outcome {e['outcome']:<2} {e['study_uid']}")
        if args.verify:
            v = out["verified"]
            print("chain intact" if v["ok"] else f"chain BROKEN at line {v['bad_line']}: "
                  f"{v['reason']}")
    return code


def cmd_timeline(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.workflow.timeline import study_files, study_timeline

    store = open_store(args)
    homes = [store.home, *(Path(h) for h in args.also)]
    line = study_timeline(homes, args.study, study_files(store, args.study))
    if not line.stages:
        print(f"relay: nothing is known about study {args.study} here", file=sys.stderr)
        if args.json:
            print_json(line.to_json())
        return 1
    if args.json:
        print_json(line.to_json())
        return 0
    start = line.stages[0].time
    for s in line.stages:
        count = f"{s.instances} images" if s.instances else ""
        print(f"{s.time.isoformat(timespec='seconds')}  +{(s.time - start).total_seconds():7.1f}s"
              f"  {s.stage:<12} {count:<12} {s.where}")
    seconds = line.door_to_image_seconds
    if seconds is not None:
        print(f"door to image: {seconds:.1f} s (from {line.stages[0].stage} to the first image)")
    return 0


def register_reconcile(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("worklist", parents=[common],
                       help="find the local patient: Modality Worklist (or PACS) C-FIND")
    p.add_argument("--patient-id", default="")
    p.add_argument("--name", default="", help="patient name (wildcards * and ? allowed)")
    p.add_argument("--accession", default="")
    p.add_argument("--date", default="", help="scheduled date YYYYMMDD or range A-B")
    p.add_argument("--modality", default="")
    p.add_argument("--level", choices=["worklist", "patient"], default="worklist",
                   help="worklist: MWL C-FIND; patient: patient-level C-FIND against a PACS")
    p.add_argument("--pacs", help="ask this PACS profile (relay pacs add), with its TLS "
                                  "settings (default: settings worklist.pacs)")
    p.add_argument("--host", help="peer host (default: settings worklist.host)")
    p.add_argument("--port", type=int, help="peer port")
    p.add_argument("--called-ae", help="peer AE title")
    p.add_argument("--calling-ae", help="Relay's AE title")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_worklist)

    p = sub.add_parser("reconcile", parents=[common],
                       help="file an outside study under the local patient (IHE IRWF)")
    p.add_argument("study", metavar="STUDY", help="Study Instance UID")
    p.add_argument("--patient-id")
    p.add_argument("--issuer")
    p.add_argument("--name")
    p.add_argument("--birth-date")
    p.add_argument("--sex")
    p.add_argument("--accession")
    p.add_argument("--from-worklist", type=int, metavar="N",
                   help="take the values of entry N of the last `relay worklist` answer")
    p.add_argument("--new-uids", action="store_true",
                   help="give the copy new UIDs (mapped consistently, references included)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_reconcile)


def cmd_worklist(args: argparse.Namespace) -> int:
    from app.settings import load_settings
    from app.workflow import worklist

    store = open_store(args)
    settings = load_settings(store.home)
    peer = worklist.configured_peer(settings, pacs=args.pacs or "", host=args.host or "",
                                    port=args.port or 0, called_ae=args.called_ae or "",
                                    calling_ae=args.calling_ae or "")
    if peer is None:
        print("relay: no worklist SCP: give --pacs or --host/--port/--called-ae, or set "
              "worklist in the settings", file=sys.stderr)
        return 2
    if args.level == "patient":
        patients = worklist.find_patients(peer, patient_name=args.name,
                                          patient_id=args.patient_id, home=store.home)
        entries = [worklist.WorklistEntry(patient=p) for p in patients]
    else:
        entries = worklist.find_worklist(peer, patient_name=args.name,
                                         patient_id=args.patient_id,
                                         accession_number=args.accession, date=args.date,
                                         modality=args.modality, home=store.home)
    rows = [{"n": n, **e.to_json()} for n, e in enumerate(entries, 1)]
    save_last_worklist(store.home, rows)  # the search and its association: in the audit
    if args.json:
        print_json({"peer": str(peer), "entries": rows})
    else:
        for r in rows:
            print(f"{r['n']:>3}  {r['patient_name']:<28} {r['patient_id']:<14} "
                  f"{r['patient_birth_date']:<9} {r['patient_sex']:<2} {r['accession_number']}")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from app.workflow.derive import WorkflowError
    from app.workflow.patient import PatientValues, confirmation_needed
    from app.workflow.reconcile import disc_values, outside_values, reconcile_study

    store = open_store(args)
    try:
        base = outside_values(store, args.study)
        if args.from_worklist is not None:
            base = PatientValues(**_worklist_entry(store.home, args.from_worklist))
        local = base.merged(patient_id=args.patient_id, issuer_of_patient_id=args.issuer,
                            patient_name=args.name, patient_birth_date=args.birth_date,
                            patient_sex=args.sex, accession_number=args.accession)
        doubts = confirmation_needed(disc_values(store, args.study), local)
        for kw in doubts:  # typed or picked on purpose: said, not refused
            print(f"relay: warning: {kw} differs from the outside study", file=sys.stderr)
        progress = Progress("Reconciling")
        bar = TerminalProgress(progress, enabled=None if not args.json else False)
        try:
            result = reconcile_study(store, args.study, local, new_uids=args.new_uids,
                                     confirmed=True, progress=progress)
        finally:
            bar.close()
    except WorkflowError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print_json(result.to_json())
    else:
        print(f"{result.instances} instances reconciled into study {result.reconciled_study_uid}")
        for kw, (old, new) in result.changed.items():
            print(f"  {kw}: {old!r} -> {new!r}")
        for f in result.failed:  # still with the outside values: the tech must know which
            print(f"  failed {f.path}: {f.reason}")
    return 0 if not result.failed else 1


def save_last_worklist(home: Any, rows: list[dict[str, Any]]) -> None:
    import json
    from pathlib import Path

    path = Path(home) / "workflow" / "worklist.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows), encoding="utf-8")


def _worklist_entry(home: Any, n: int) -> dict[str, str]:
    import json
    from pathlib import Path

    from app.workflow.derive import WorkflowError
    from app.workflow.patient import KEYWORDS

    path = Path(home) / "workflow" / "worklist.json"
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkflowError("no worklist answer to pick from: run `relay worklist` first") \
            from exc
    if not 1 <= n <= len(rows):
        raise WorkflowError(f"the last worklist answer has {len(rows)} entries, not {n}")
    return {k: str(rows[n - 1].get(k, "")) for k in KEYWORDS}


def cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.workflow.burn import Burner, burn, find_burner
    from app.workflow.derive import WorkflowError
    from app.workflow.export import export_studies

    if args.burn and not args.iso:
        print("relay: --burn needs --iso FILE", file=sys.stderr)
        return 2
    store = open_store(args)
    progress = Progress("Exporting")
    bar = TerminalProgress(progress, enabled=None if not args.json else False)
    try:
        result = export_studies(
            store, args.studies, Path(args.to).expanduser(), layout=args.layout,
            series_uids=args.series, iso=Path(args.iso).expanduser() if args.iso else None,
            deidentify=tuple(args.deidentify) if args.deidentify is not None else None,
            pseudonym=args.pseudonym, progress=progress)
    except (WorkflowError, ValueError) as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    out = result.to_json()
    if args.burn and result.iso is not None:
        burner = find_burner()
        if isinstance(burner, Burner):
            burn(result.iso, burner)
            out["burned"] = burner.drive
        else:
            out["burned"] = None
            print(f"relay: not burned: {burner}", file=sys.stderr)
    if args.json:
        print_json(out)
    else:
        if result.requested is not None:
            print(f"{result.requested} is not empty: the disc went into a new folder in it, "
                  f"{result.to.name}")
        print(f"{result.instances} instances written to {result.to}"
              + (f" and {result.iso}" if result.iso else ""))
        for e in result.excluded:
            print(f"  excluded {e['sop_instance_uid']}: {e['reason']}")
        for f in result.failed:
            print(f"  failed {f.path}: {f.reason}")
    return 0 if not result.failed else 1
