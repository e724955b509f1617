"""Technologist subcommands: ``reconcile``, ``deidentify``, ``export``, ``audit``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.cli.main import TerminalProgress, open_store, print_json
from app.tasks import Progress


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    from app.workflow.deid_profile import OPTIONS

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
    p.add_argument("--verify", action="store_true",
                   help="check the hash chain; exit 1 when it is broken")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_audit)


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
    events = [e for e in audit.read(home) if not args.study or e.get("study_uid") == args.study]
    out: dict[str, Any] = {"events": events}
    code = 0
    if args.verify:
        v = audit.verify(home)
        out["verified"] = {"ok": v.ok, "lines": v.lines, "bad_line": v.bad_line,
                           "reason": v.reason}
        code = 0 if v.ok else 1
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
