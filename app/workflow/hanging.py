"""Hanging protocols as data: which series go where, in which window, when a study opens.

Protocols are JSON files in ``resources/hanging/`` (schema: ``docs/hanging-protocols.md``).
:func:`choose` picks the protocol for a study: the user's choice for studies of that kind when
one is saved (:func:`save_choice`), else the best match on modality, body part, description
words and the kinds of series present. :func:`hang` turns a protocol into concrete cells (a
series, a window preset, a study: today's or the prior) for the reading window; a cell whose
series is not there (no prior, no CTA) is left out rather than shown empty.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.errors import RelayError
from app.model import Series, Study
from app.resources import resource_path
from app.settings import load_settings, save_settings

log = logging.getLogger(__name__)

SCHEMA = 1
VIEWS = ("grid", "mpr")
LINKS = ("none", "position")
SLAB_MODES = ("mip", "minip", "avg")
#: Cells of a grid stage: up to 4 viewports (2×2), or up to 3 viewports over up to 3 planes.
MAX_CELLS = 6
PLANES = ("axial", "coronal", "sagittal")
#: Series kinds a protocol can ask for (see :func:`series_kind`); "largest" is any image series.
KINDS = ("plain", "cta", "perfusion", "localizer", "mr", "other", "nonimage", "largest")

_NON_IMAGE = {"SR", "KO", "PR", "DOC", "REG", "SEG", "RTSTRUCT", "OT"}
_CTA_WORDS = {"CTA", "ANGIO", "ANGIOGRAPHY", "COW", "CAROTID", "ARTERIAL", "AV"}
_PERFUSION_WORDS = {"PERFUSION", "CTP", "PERF", "CBF", "CBV", "MTT", "TMAX", "TTP"}
_LOCALIZER_WORDS = {"SCOUT", "TOPOGRAM", "TOPO", "LOCALIZER", "LOCALISER", "SURVIEW", "SCANOGRAM"}


class ProtocolError(RelayError):
    """A hanging-protocol file that does not follow the schema (the message names it)."""


@dataclass(frozen=True)
class Cell:
    """One viewport of a grid stage: the series of ``series`` kind, in ``preset``."""

    series: str
    preset: str = ""
    study: str = "current"
    """"current" (the study opened) or "prior" (the most relevant earlier study)."""
    plane: str = ""
    """"" (the series' own images) or an MPR plane ("axial", "coronal", "sagittal"): a thick
    slab of the series resliced in that plane (see :attr:`slab_mode`, :attr:`slab_mm`)."""
    slab_mode: str = ""
    slab_mm: float = 0.0


@dataclass(frozen=True)
class Stage:
    """One screen of a protocol: a grid of cells, or MPR of one series with a slab."""

    name: str
    view: str = "grid"
    cells: tuple[Cell, ...] = ()
    link: str = "none"
    series: str = ""
    preset: str = ""
    slab_mode: str = ""
    slab_mm: float = 0.0
    planes: tuple[str, ...] = PLANES


@dataclass(frozen=True)
class Match:
    """What a study must look like for the protocol (empty lists: no condition)."""

    modalities: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    series_kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class Protocol:
    name: str
    title: str
    stages: tuple[Stage, ...]
    match: Match = field(default_factory=Match)
    priority: int = 0
    about: str = ""


@dataclass(frozen=True)
class HungCell:
    """A cell resolved for one study: which series, from which study, in which window."""

    series: Series
    study: Study
    preset: str = ""
    prior: bool = False
    plane: str = ""
    slab_mode: str = ""
    slab_mm: float = 0.0


@dataclass(frozen=True)
class HungStage:
    stage: Stage
    cells: tuple[HungCell, ...] = ()
    mpr_series: Series | None = None

    @property
    def image_cells(self) -> tuple[HungCell, ...]:
        """The cells that show a series' own images (2D viewports)."""
        return tuple(c for c in self.cells if not c.plane)

    @property
    def slab_cells(self) -> tuple[HungCell, ...]:
        """The cells that show MPR planes (thick slabs) of one series, on the same screen."""
        return tuple(c for c in self.cells if c.plane)


# -- reading the files ------------------------------------------------------------------------
def parse(raw: Any, where: str) -> Protocol:
    """A protocol from its JSON object; :class:`ProtocolError` naming ``where`` and the field."""
    if not isinstance(raw, dict):
        raise ProtocolError(f"{where}: a hanging protocol is a JSON object")
    if raw.get("schema") != SCHEMA:
        raise ProtocolError(f"{where}: schema must be {SCHEMA}, not {raw.get('schema')!r}")
    name = _text(raw, "name", where, required=True)
    stages_raw = raw.get("stages")
    if not isinstance(stages_raw, list) or not stages_raw:
        raise ProtocolError(f"{where}: 'stages' must be a non-empty list")
    stages = tuple(_stage(s, f"{where} stage {i + 1}") for i, s in enumerate(stages_raw))
    match_raw = raw.get("match", {})
    if not isinstance(match_raw, dict):
        raise ProtocolError(f"{where}: 'match' must be an object")
    match = Match(**{key: _words(match_raw, key, where)
                     for key in ("modalities", "body_parts", "words", "series_kinds")})
    for kind in match.series_kinds:
        _check_kind(kind.lower(), where)
    priority = raw.get("priority", 0)
    if not isinstance(priority, int):
        raise ProtocolError(f"{where}: 'priority' must be an integer")
    return Protocol(name=name, title=_text(raw, "title", where) or name, stages=stages,
                    match=Match(match.modalities, match.body_parts, match.words,
                                tuple(k.lower() for k in match.series_kinds)),
                    priority=priority, about=_text(raw, "about", where))


def _stage(raw: Any, where: str) -> Stage:
    if not isinstance(raw, dict):
        raise ProtocolError(f"{where}: a stage is a JSON object")
    view = _text(raw, "view", where) or "grid"
    if view not in VIEWS:
        raise ProtocolError(f"{where}: 'view' must be one of {VIEWS}, not {view!r}")
    link = _text(raw, "link", where) or "none"
    if link not in LINKS:
        raise ProtocolError(f"{where}: 'link' must be one of {LINKS}, not {link!r}")
    name = _text(raw, "name", where) or view
    if view == "mpr":
        series = _text(raw, "series", where, required=True)
        _check_kind(series, where)
        mode, mm = _slab(raw, where)
        planes = tuple(_words(raw, "planes", where, upper=False)) or PLANES
        if any(p not in PLANES for p in planes):
            raise ProtocolError(f"{where}: 'planes' may only name {PLANES}")
        return Stage(name=name, view=view, link=link, series=series,
                     preset=_text(raw, "preset", where), slab_mode=mode, slab_mm=float(mm),
                     planes=planes)
    cells_raw = raw.get("cells")
    if not isinstance(cells_raw, list) or not cells_raw or len(cells_raw) > MAX_CELLS:
        raise ProtocolError(f"{where}: 'cells' must be a list of 1 to {MAX_CELLS} cells")
    cells = [_cell(cell, f"{where} cell {i + 1}") for i, cell in enumerate(cells_raw)]
    images = [c for c in cells if not c.plane]
    slabs = [c for c in cells if c.plane]
    if slabs:
        first = slabs[0]
        if any((c.series, c.study, c.slab_mode, c.slab_mm, c.preset)
               != (first.series, first.study, first.slab_mode, first.slab_mm, first.preset)
               for c in slabs):
            raise ProtocolError(f"{where}: the cells with a 'plane' show one series in one MPR: "
                                "same 'series', 'study', 'slab' and 'preset'")
        if len({c.plane for c in slabs}) != len(slabs):
            raise ProtocolError(f"{where}: a 'plane' may be asked for once")
        if len(images) > 3:
            raise ProtocolError(f"{where}: with 'plane' cells, at most 3 cells without one "
                                "(they take the top row, the planes the bottom row)")
    elif len(images) > 4:
        raise ProtocolError(f"{where}: 'cells' must be a list of 1 to 4 cells when none has "
                            "a 'plane'")
    return Stage(name=name, view=view, cells=tuple(cells), link=link)


def _cell(raw: Any, at: str) -> Cell:
    if not isinstance(raw, dict):
        raise ProtocolError(f"{at}: a cell is a JSON object")
    kind = _text(raw, "series", at, required=True)
    _check_kind(kind, at)
    study = _text(raw, "study", at) or "current"
    if study not in ("current", "prior"):
        raise ProtocolError(f"{at}: 'study' must be 'current' or 'prior'")
    plane = _text(raw, "plane", at)
    if plane and plane not in PLANES:
        raise ProtocolError(f"{at}: 'plane' must be one of {PLANES}, not {plane!r}")
    if "slab" in raw and not plane:
        raise ProtocolError(f"{at}: a 'slab' needs a 'plane'")
    mode, mm = _slab(raw, at)
    return Cell(series=kind, preset=_text(raw, "preset", at), study=study, plane=plane,
                slab_mode=mode, slab_mm=mm)


def _slab(raw: dict[str, Any], where: str) -> tuple[str, float]:
    slab = raw.get("slab", {})
    if not isinstance(slab, dict):
        raise ProtocolError(f"{where}: 'slab' must be an object")
    mode = str(slab.get("mode", ""))
    if mode and mode not in SLAB_MODES:
        raise ProtocolError(f"{where}: slab 'mode' must be one of {SLAB_MODES}")
    mm = slab.get("mm", 0)
    if not isinstance(mm, (int, float)) or isinstance(mm, bool) or not 0 <= mm <= 50:
        raise ProtocolError(f"{where}: slab 'mm' must be a number from 0 to 50")
    return mode, float(mm)


def _check_kind(kind: str, where: str) -> None:
    if kind not in KINDS:
        raise ProtocolError(f"{where}: series kind {kind!r} is not one of {KINDS}")


def _text(raw: dict[str, Any], key: str, where: str, required: bool = False) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str) or (required and not value):
        raise ProtocolError(f"{where}: '{key}' must be {'a non-empty' if required else 'a'} text")
    return value


def _words(raw: dict[str, Any], key: str, where: str, upper: bool = True) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProtocolError(f"{where}: '{key}' must be a list of texts")
    return tuple(v.upper() if upper else v for v in value)


def load_dir(folder: Path) -> list[Protocol]:
    """Every ``*.json`` protocol in ``folder``; a bad file is logged (with its name and why)
    and left out, the others are used."""
    protocols: list[Protocol] = []
    for path in sorted(folder.glob("*.json")):
        try:
            protocols.append(parse(json.loads(path.read_text(encoding="utf-8")), path.name))
        except (OSError, ValueError, ProtocolError) as exc:
            log.warning("hanging protocol %s not used: %s", path.name, exc)
    return protocols


@lru_cache(maxsize=1)
def builtin_protocols() -> tuple[Protocol, ...]:
    """The protocols shipped in ``resources/hanging/``."""
    return tuple(load_dir(resource_path("hanging")))


def protocols(home: Path | None = None) -> list[Protocol]:
    """The built-in protocols, and the user's own from ``HOME/hanging/`` (same name: the
    user's wins)."""
    found = {p.name: p for p in builtin_protocols()}
    if home is not None and (Path(home) / "hanging").is_dir():
        found.update({p.name: p for p in load_dir(Path(home) / "hanging")})
    return list(found.values())


# -- series kinds -----------------------------------------------------------------------------
def _tokens(*texts: str) -> set[str]:
    return {t for text in texts for t in re.split(r"[^A-Z0-9]+", text.upper()) if t}


def series_kind(series: Series) -> str:
    """What a series is for a protocol: "nonimage" (SR, KOS, presentation states...),
    "localizer", "cta", "perfusion", "plain" (other CT), "mr" or "other"."""
    if series.modality.upper() in _NON_IMAGE or series.instance_count == 0:
        return "nonimage"
    words = _tokens(series.series_description)
    if words & _LOCALIZER_WORDS or (series.modality == "CT" and series.instance_count <= 3):
        return "localizer"
    if series.modality == "CT":
        if words & _CTA_WORDS:
            return "cta"
        if words & _PERFUSION_WORDS:
            return "perfusion"
        return "plain"
    if series.modality == "MR":
        return "mr"
    return "other"


def pick_series(study: Study, kind: str) -> Series | None:
    """The series of ``kind`` to show: the one with the most images (the thinnest
    reconstruction, which MPR and slabs need), the lowest series number on a tie."""
    if kind == "largest":
        found = [s for s in study.series if series_kind(s) not in ("nonimage", "localizer")]
    else:
        found = [s for s in study.series if series_kind(s) == kind]
    if not found:
        return None
    return min(found, key=lambda s: (-s.instance_count, s.series_number or 0))


# -- matching ---------------------------------------------------------------------------------
def study_key(study: Study) -> str:
    """What a user's protocol choice is saved under: the study's modalities and body part
    (e.g. "CT/HEAD"), so the choice applies to the next study of the same kind."""
    modalities = sorted({s.modality for s in study.series if series_kind(s) != "nonimage"}
                        or set(study.modalities))
    parts = sorted({s.body_part_examined.upper() for s in study.series if s.body_part_examined})
    return "/".join(["+".join(modalities) or "?", "+".join(parts) or "?"])


def score(protocol: Protocol, study: Study) -> int | None:
    """How well ``protocol`` fits ``study`` (higher is better), or None when it does not."""
    match = protocol.match
    modalities = {s.modality.upper() for s in study.series} | {m.upper() for m in study.modalities}
    if match.modalities and not modalities & set(match.modalities):
        return None
    kinds = {series_kind(s) for s in study.series}
    if any(k not in kinds for k in match.series_kinds):
        return None
    parts = {s.body_part_examined.upper() for s in study.series if s.body_part_examined}
    words = _tokens(study.study_description, *(s.series_description for s in study.series))
    anatomy = bool(parts & set(match.body_parts)) or bool(words & set(match.words))
    if (match.body_parts or match.words) and not anatomy:
        return None
    return protocol.priority * 100 + len(match.series_kinds) * 10 + (5 if anatomy else 0)


def best_match(study: Study, candidates: Iterable[Protocol]) -> Protocol | None:
    scored = [(s, p) for p in candidates if (s := score(p, study)) is not None]
    return max(scored, key=lambda sp: sp[0])[1] if scored else None


def choose(study: Study, home: Path | None = None) -> Protocol | None:
    """The protocol for ``study``: the user's saved choice for its kind, else the best match."""
    candidates = protocols(home)
    if home is not None:
        chosen = saved_choices(home).get(study_key(study))
        found = next((p for p in candidates if p.name == chosen), None)
        if found is not None:
            return found
        if chosen:
            log.warning("saved hanging protocol %r is not available; matching instead", chosen)
    return best_match(study, candidates)


def saved_choices(home: Path) -> dict[str, str]:
    """The user's protocol per kind of study (:func:`study_key`); empty when unreadable."""
    try:
        return dict(load_settings(home).reading.hanging)
    except RelayError as exc:
        log.warning("hanging protocol choices not read: %s", exc)
        return {}


def save_choice(home: Path, study: Study, protocol_name: str) -> None:
    """Use ``protocol_name`` for studies of this kind from now on (kept in the settings)."""
    settings = load_settings(home)
    settings.reading.hanging[study_key(study)] = protocol_name
    save_settings(home, settings)


# -- hanging ----------------------------------------------------------------------------------
def hang(protocol: Protocol, study: Study, prior: Study | None = None) -> list[HungStage]:
    """The protocol's stages filled with ``study``'s (and ``prior``'s) series; stages with
    nothing to show are dropped, and so are cells whose series is not there."""
    out: list[HungStage] = []
    for stage in protocol.stages:
        if stage.view == "mpr":
            series = pick_series(study, stage.series)
            if series is not None:
                out.append(HungStage(stage, mpr_series=series))
            continue
        cells: list[HungCell] = []
        for cell in stage.cells:
            source = prior if cell.study == "prior" else study
            found = pick_series(source, cell.series) if source is not None else None
            if found is not None and source is not None:
                cells.append(HungCell(found, source, cell.preset, cell.study == "prior",
                                      cell.plane, cell.slab_mode, cell.slab_mm))
        if cells:
            out.append(HungStage(stage, cells=tuple(cells)))
    return out


def grid_shape(cells: Sequence[object]) -> tuple[int, int]:
    """Rows and columns for ``len(cells)`` viewports: side by side up to three, then 2×2."""
    n = len(cells)
    return (1, max(1, n)) if n <= 3 else (2, 2)


def stage_shape(hung: HungStage) -> tuple[tuple[int, int], bool]:
    """The viewports' grid (rows, columns) of a grid stage, and whether a row of MPR slabs
    goes under it (the cells with a ``plane``: one MPR as wide as the grid). Without
    viewports the slabs take the whole screen."""
    images = hung.image_cells
    return (grid_shape(images) if images else (0, 0)), bool(hung.slab_cells)
