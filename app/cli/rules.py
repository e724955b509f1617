"""``relay rules list|add|remove``: the forwarding rules (:mod:`app.workflow.rules`)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from app.cli.main import print_json
from app.errors import SettingsError
from app.home import resolve_home
from app.settings import RULE_PRIORITIES, RULE_SOURCES, ForwardingRule, load_settings, save_settings


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    rules = sub.add_parser("rules", parents=[common],
                           help="forwarding rules: what is sent on, where, as it arrives")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)

    p = rules_sub.add_parser("list", parents=[common], help="list the rules and the batching")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_rules_list)

    p = rules_sub.add_parser(
        "add", parents=[common], help="add (or replace) a rule",
        description="Add or replace a forwarding rule. Every condition given must hold; regular "
                    "expressions are case-insensitive and may match anywhere in the value. "
                    "--example stroke starts from the shipped stroke rule (CT of the head "
                    "described STROKE, CODE or CTA, at stroke priority).")
    p.add_argument("name")
    p.add_argument("--example", choices=["stroke"], help="start from a shipped example rule")
    p.add_argument("--to", action="append", default=None, metavar="hub:NAME|pacs:NAME",
                   help="a target (repeat for several)")
    p.add_argument("--source", action="append", default=None, choices=RULE_SOURCES,
                   help="only instances from here (repeat; default: any)")
    p.add_argument("--calling-ae", metavar="REGEX", help="the sender's calling AE title")
    p.add_argument("--modality", action="append", default=None, metavar="MODALITY",
                   help="CT, MR... (repeat; default: any)")
    p.add_argument("--body-part", metavar="REGEX", help="Body Part Examined, e.g. HEAD|BRAIN")
    p.add_argument("--description", metavar="REGEX",
                   help="the study or series description, e.g. STROKE|CODE|CTA")
    p.add_argument("--priority", choices=RULE_PRIORITIES)
    p.add_argument("--disabled", action="store_true", help="keep the rule but do not apply it")
    p.add_argument("--imports", choices=("on", "off"),
                   help="also apply the rules to imports (a setting for every rule)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_rules_add)

    p = rules_sub.add_parser("remove", parents=[common], help="forget a rule")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_rules_remove)


def _listing(home: Any) -> dict[str, Any]:
    fwd = load_settings(home).forwarding
    return {"rules": [dataclasses.asdict(r) for r in fwd.rules], "imports": fwd.imports,
            "batch_instances": fwd.batch_instances, "batch_ms": fwd.batch_ms,
            "quiet_seconds": fwd.quiet_seconds}


def cmd_rules_list(args: argparse.Namespace) -> int:
    out = _listing(resolve_home(getattr(args, "home", None)))
    if args.json:
        print_json(out)
        return 0
    if not out["rules"]:
        print("no forwarding rule (add one: relay rules add stroke --example stroke "
              "--to hub:NAME)")
    for r in out["rules"]:
        when = [f"from {'/'.join(r['sources'])}" if r["sources"] else "",
                f"AE ~ {r['calling_ae']}" if r["calling_ae"] else "",
                "/".join(r["modalities"]), f"body part ~ {r['body_part']}" if r["body_part"]
                else "", f"description ~ {r['description']}" if r["description"] else ""]
        print(f"{r['name']:<12} {' '.join(w for w in when if w) or 'everything'} -> "
              f"{', '.join(r['targets']) or '(no target)'}  [{r['priority']}]"
              f"{'' if r['enabled'] else '  (disabled)'}")
    print(f"batches: {out['batch_instances']} instances or {out['batch_ms']} ms; imports "
          f"{'forwarded' if out['imports'] else 'not forwarded'}")
    return 0


def cmd_rules_add(args: argparse.Namespace) -> int:
    from app.workflow.rules import example

    home = resolve_home(getattr(args, "home", None))
    settings = load_settings(home)
    fields: dict[str, Any] = example(args.example) if args.example else {}
    old = next((r for r in settings.forwarding.rules if r.name == args.name), None)
    if old is not None and not args.example:
        fields = dataclasses.asdict(old)
    given = {"targets": args.to, "sources": args.source, "calling_ae": args.calling_ae,
             "modalities": args.modality, "body_part": args.body_part,
             "description": args.description, "priority": args.priority}
    fields.update({k: v for k, v in given.items() if v is not None})
    fields.update(name=args.name, enabled=not args.disabled)
    rule = ForwardingRule(**fields)
    for target in rule.targets:
        kind, _, name = target.partition(":")
        known = settings.hub(name) if kind == "hub" else settings.pacs_profile(name)
        if known is None:
            raise SettingsError(f"rule '{rule.name}': there is no {kind} called '{name}' "
                                f"(relay {'hub' if kind == 'hub' else 'pacs'} list)")
    rules = [r for r in settings.forwarding.rules if r.name != rule.name]
    at = next((i for i, r in enumerate(settings.forwarding.rules) if r.name == rule.name),
              len(rules))
    rules.insert(at, rule)
    settings.forwarding.rules = rules
    if args.imports:
        settings.forwarding.imports = args.imports == "on"
    save_settings(home, settings)
    if not rule.targets:
        print(f"relay: rule '{rule.name}' has no target yet: add --to hub:NAME",
              file=sys.stderr)
    if args.json:
        print_json(_listing(home))
    return 0


def cmd_rules_remove(args: argparse.Namespace) -> int:
    home = resolve_home(getattr(args, "home", None))
    settings = load_settings(home)
    kept = [r for r in settings.forwarding.rules if r.name != args.name]
    if len(kept) == len(settings.forwarding.rules):
        print(f"relay: no rule called '{args.name}'", file=sys.stderr)
        return 1
    settings.forwarding.rules = kept
    save_settings(home, settings)
    if args.json:
        print_json(_listing(home))
    return 0
