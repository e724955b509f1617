"""Print the SOP class and transfer syntax tables of docs/conformance-statement.md from the code
(``.venv/bin/python docs/conformance_tables.py``), to paste between the document's
``<!-- list: NAME -->`` and ``<!-- end -->`` markers. tests/core/test_conformance.py derives
the same lists from the code and compares them with the document, so they cannot drift.
"""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

from pydicom.uid import UID
from pynetdicom.sop_class import _STORAGE_CLASSES as STORAGE_CLASSES

from app.dicom.codecs import CODECS, NATIVE
from app.net.dimse import client, commit, listener
from app.net.dimse.node import NodeSettings
from app.workflow import worklist

#: The modules where Relay is the user of a service: the DIMSE client (echo, C-FIND, C-GET,
#: C-MOVE, C-STORE), Storage Commitment requests, Modality Worklist queries.
SCU_MODULES: tuple[ModuleType, ...] = (client, commit, worklist)


def scp_classes() -> dict[str, tuple[bool, bool]]:
    """The non-storage SOP classes Relay's node accepts, as ``{uid: (scu_role, scp_role)}``,
    read from the application entity the node really builds (``Listener._build_ae``)."""
    node = listener.Listener.__new__(listener.Listener)
    node.node = NodeSettings()
    ae = node._build_ae()
    storage = set(STORAGE_CLASSES.values())
    return {str(cx.abstract_syntax): (bool(cx.scu_role), bool(cx.scp_role))
            for cx in ae.supported_contexts if cx.abstract_syntax not in storage}


def scu_classes() -> set[str]:
    """The non-storage SOP classes Relay proposes as a user, read from the source of
    :data:`SCU_MODULES`: the first argument of every ``build_context(...)``, resolved through
    the module's names, a local ``name = CONSTANT`` or, for a parameter, the callers in the same
    module that pass a constant (worklist's ``_association(peer, MWL_FIND)``)."""
    found: set[str] = set()
    for module in SCU_MODULES:
        tree = ast.parse(inspect.getsource(module))
        functions = {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
        for func in functions.values():
            for call in ast.walk(func):
                if _called(call) == "build_context" and isinstance(call.args[0], ast.Name):
                    found |= _resolve(module, tree, functions, func, call.args[0].id)
    return found - set(STORAGE_CLASSES.values())


def _called(node: ast.AST) -> str:
    if not isinstance(node, ast.Call):
        return ""
    return node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")


def _constant(module: ModuleType, name: str) -> set[str]:
    value = getattr(module, name, None)
    return {str(value)} if isinstance(value, str) and UID(str(value)).is_valid else set()


def _resolve(module: ModuleType, tree: ast.Module, functions: dict[str, ast.FunctionDef],
             func: ast.FunctionDef, name: str, depth: int = 3) -> set[str]:
    for node in ast.walk(func):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Name)
                and any(getattr(t, "id", "") == name for t in node.targets)):
            return _constant(module, node.value.id)
    params = [a.arg for a in func.args.args]
    if name not in params:
        return _constant(module, name)
    position, found = params.index(name), set()
    for caller in functions.values():
        for call in ast.walk(caller):
            if (depth and _called(call) == func.name and len(call.args) > position  # type: ignore[attr-defined]
                    and isinstance(call.args[position], ast.Name)):  # type: ignore[attr-defined]
                found |= _resolve(module, tree, functions, caller,
                                  call.args[position].id, depth - 1)  # type: ignore[attr-defined]
    return found


def services() -> list[tuple[str, bool, bool]]:
    """Every non-storage SOP class with Relay's roles, ``(uid, as SCU, as SCP)``, ordered by UID:
    SCU when Relay proposes it, SCP when its node accepts it."""
    scp, scu = set(scp_classes()), scu_classes()
    return [(uid, uid in scu, uid in scp)
            for uid in sorted(scu | scp, key=lambda u: [int(p) for p in u.split(".")])]


def name(uid: str) -> str:
    return UID(uid).name if UID(uid).is_valid and UID(uid).name != uid else uid


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def blocks() -> dict[str, str]:
    yes = {True: "Yes", False: "No"}
    rows = [(name(uid), f"`{uid}`", yes[scu], yes[scp]) for uid, scu, scp in services()]
    storage = sorted(STORAGE_CLASSES.items(), key=lambda kv: kv[1])
    return {
        "services": table(rows, ("SOP Class", "UID", "SCU", "SCP")),
        "storage": table([(name(uid), f"`{uid}`") for _, uid in storage],
                         ("Storage SOP Class", "UID")),
        "ts-scp": table([(name(u), f"`{u}`") for u in listener._TRANSFER_SYNTAXES],
                        ("Transfer Syntax (in order of preference)", "UID")),
        "ts-receive": table([(name(u), f"`{u}`") for u in client.RECEIVE_SYNTAXES],
                            ("Transfer Syntax (in order of preference)", "UID")),
        "ts-decode": table(
            [(name(u), f"`{u}`", "native") for u in sorted(NATIVE)]
            + [(name(u), f"`{u}`", c.name + (" (lossy)" if c.lossy else ""))
               for c in CODECS for u in c.uids],
            ("Transfer Syntax", "UID", "Decoder")),
    }


if __name__ == "__main__":
    for key, text in blocks().items():
        print(f"<!-- list: {key} -->\n{text}\n<!-- end -->\n")
