"""Storage-rule subcommands: ``retention`` (show or set the practice's rule) and ``purge``
(apply it; ``--dry-run`` lists what would go and why, and what is kept back and why).

``relay purge`` never removes a study open in a Relay window or in an unfinished transfer, nor,
unless the rule says ``--no-only-verified``, one that no hub or PACS confirmed holding."""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path
from typing import Any

from app.cli.main import print_json
from app.home import resolve_home
from app.settings import StorageSettings, load_settings, save_settings


def _rule_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep-days", type=int, metavar="N",
                   help="purge studies received more than N days ago (0: no age limit)")
    p.add_argument("--keep-gb", type=float, metavar="N",
                   help="purge the oldest studies while the store holds more than N GB "
                        "(0: no size limit)")
    p.add_argument("--only-verified", action=argparse.BooleanOptionalAction, default=None,
                   help="purge only studies verified on a hub or PACS (default: on; "
                        "--no-only-verified lets unverified studies go too)")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("retention", parents=[common],
                       help="show or set the storage rule (what `relay purge` removes)")
    _rule_options(p)
    p.add_argument("--low-disk-gb", type=float, metavar="N",
                   help="warn before imports and fetches when less than N GB are free")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_retention)

    p = sub.add_parser("purge", parents=[common],
                       help="remove local studies the storage rule reaches")
    _rule_options(p)
    p.add_argument("--dry-run", action="store_true",
                   help="only list what would go and why (and what is kept back and why)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_purge)


def warn_low_disk(home: Path) -> None:
    """Say on stderr when the store's disk is nearly full (before an import or a fetch)."""
    from app.store.space import low_disk_warning

    warning = low_disk_warning(home, load_settings(home).storage)
    if warning:
        sys.stderr.write(f"relay: warning: {warning}\n")


def _apply(rule: StorageSettings, args: argparse.Namespace) -> StorageSettings:
    values = {"keep_days": args.keep_days, "keep_gb": args.keep_gb,
              "only_verified": args.only_verified,
              "low_disk_gb": getattr(args, "low_disk_gb", None)}
    changed = {k: v for k, v in values.items() if v is not None}
    for key in ("keep_days", "keep_gb", "low_disk_gb"):
        if changed.get(key, 0) < 0:
            raise SystemExit(f"relay: --{key.replace('_', '-')} cannot be negative")
    return StorageSettings(**{**rule.__dict__, **changed})


def describe(rule: StorageSettings) -> str:
    parts = []
    if rule.keep_days > 0:
        parts.append(f"keep {rule.keep_days} days")
    if rule.keep_gb > 0:
        parts.append(f"keep at most {rule.keep_gb:g} GB (oldest go first)")
    if not parts:
        return "no storage rule: nothing is purged"
    which = "only studies verified on a hub or PACS" if rule.only_verified else \
        "verified or not"
    return f"{', '.join(parts)}; {which}; never a study open or in a transfer"


def cmd_retention(args: argparse.Namespace) -> int:
    home = resolve_home(getattr(args, "home", None))
    settings = load_settings(home)
    rule = _apply(settings.storage, args)
    if rule != settings.storage:
        settings.storage = rule
        save_settings(home, settings)
    if args.json:
        print_json({**rule.__dict__, "description": describe(rule)})
    else:
        sys.stdout.write(f"{describe(rule)}; low-disk warning below {rule.low_disk_gb:g} GB\n")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from app.store import retention
    from app.store.local import Store

    home = resolve_home(getattr(args, "home", None))
    rule = _apply(load_settings(home).storage, args)
    store = Store(home)
    if args.dry_run:
        plan = retention.plan(store, rule)
        if args.json:
            print_json({**plan.to_json(), "dry_run": True, "description": describe(rule)})
        else:
            _print_plan(plan, rule)
        return 0
    if not retention.has_rule(rule):
        sys.stdout.write(f"{describe(rule)} (`relay retention --keep-days N` sets one)\n")
        if args.json:
            print_json(retention.PurgeResult().to_json())
        return 0
    result = retention.purge(store, rule)
    if args.json:
        print_json(result.to_json())
    else:
        gone = result.to_json()
        sys.stdout.write(f"purged {len(result.removed)} studies ({gone['instances']} instances, "
                         f"{gone['bytes'] / 1e9:.2f} GB); {len(result.kept)} kept back\n")
        for decision in result.kept:
            sys.stdout.write(f"  kept {_when(decision.received)}: {decision.reason}\n")
    return 0


def _when(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch).strftime("received %Y-%m-%d")


def _print_plan(plan: Any, rule: StorageSettings) -> None:
    sys.stdout.write(f"rule: {describe(rule)}\n")
    sys.stdout.write(f"would purge {len(plan.purge)} studies ({plan.purge_bytes / 1e9:.2f} GB "
                     f"of {plan.store_bytes / 1e9:.2f} GB):\n")
    for d in plan.purge:
        sys.stdout.write(f"  {d.study_uid} ({_when(d.received)}): {d.reason}\n")
    if plan.kept:
        sys.stdout.write(f"kept back {len(plan.kept)}:\n")
        for d in plan.kept:
            sys.stdout.write(f"  {d.study_uid} ({_when(d.received)}): {d.reason}\n")
