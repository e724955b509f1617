"""What a monochrome image's stored values mean beyond a grey scale: the colours its
Supplemental Palette Color LUT gives them (PS3.3 C.7.6.19) and the quantity its Real World
Value Mapping gives them (PS3.3 C.7.6.16.2.11), e.g. a CT perfusion map's rCBF in ml/100ml/s."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

#: UCUM's code for a quantity without a unit ("no units"): Philips writes it on every MR.
NO_UNITS = "1"


@dataclass(frozen=True)
class Quantity:
    """What the values a reader reads off an image are: a perfusion map's ("RCBF",
    "ml/100ml/s") from its Real World Value Mapping, a CT's ("", "HU") modality values."""

    label: str = ""
    unit: str = ""
    decimals: int = 0
    """Decimals that show one stored step (0 for whole steps)."""

    def text(self, value: float, decimals: int | None = None) -> str:
        """"RCBF 42 ml/100ml/s", "35 HU", "1181" (``decimals``: else the quantity's)."""
        places = self.decimals if decimals is None else decimals
        return " ".join(part for part in (self.label, f"{value:.{places}f}", self.unit) if part)


@dataclass(frozen=True)
class RealWorldValues:
    """One Real World Value Mapping item: stored values ``first``..``last`` to a quantity."""

    label: str
    """LUT Label ("RCBF"), else the LUT Explanation; "" when the mapping has no unit."""
    unit: str
    """The UCUM code of its Measurement Units ("ml/100ml/s", "s"); "" for "no units"."""
    first: float
    last: float
    slope: float = 1.0
    intercept: float = 0.0
    #: Real World Value LUT Data (one value per stored value from ``first``), instead of
    #: ``slope`` and ``intercept``.
    lut: tuple[float, ...] = ()

    def value(self, stored: float) -> float | None:
        """The quantity of the stored value ``stored``; None outside the values mapped."""
        if not self.first <= stored <= self.last:
            return None
        if self.lut:
            i = int(stored - self.first)
            return self.lut[i] if 0 <= i < len(self.lut) else None
        return stored * self.slope + self.intercept

    def values(self, stored: np.ndarray) -> np.ndarray:
        """float32 quantities of the ``stored`` values; NaN where one is outside the values
        mapped (it has no quantity: a region's statistics leave it out)."""
        flat = stored.astype(np.float64)
        inside = (flat >= self.first) & (flat <= self.last)
        if self.lut:
            table = np.asarray(self.lut, dtype=np.float64)
            index = np.clip(flat - self.first, 0, len(table) - 1).astype(np.int64)
            inside &= (flat - self.first) < len(table)
            mapped = table[index]
        else:
            mapped = flat * self.slope + self.intercept
        return np.where(inside, mapped, np.nan).astype(np.float32)

    @property
    def quantity(self) -> Quantity:
        return Quantity(self.label, self.unit, _decimals(self._step()))

    def number(self, stored: float) -> str:
        """The quantity of ``stored`` as text, with the decimals one stored step makes
        visible ("" outside the values mapped)."""
        value = self.value(stored)
        return "" if value is None else f"{value:.{_decimals(self._step())}f}"

    def readout(self, stored: float) -> str:
        """"RCBF 42 ml/100ml/s" for the stored value ``stored`` ("" outside the values
        mapped)."""
        value = self.value(stored)
        return "" if value is None else self.quantity.text(value)

    @property
    def title(self) -> str:
        """What is mapped, and in which unit: "RCBF ml/100ml/s"."""
        return " ".join(part for part in (self.label, self.unit) if part)

    def _step(self) -> float:
        if self.lut:
            steps = np.abs(np.diff(np.asarray(self.lut, dtype=np.float64)))
            steps = steps[steps > 0]
            return float(steps.min()) if steps.size else 1.0
        integral = float(self.intercept).is_integer()
        return abs(self.slope) if integral else min(abs(self.slope), 0.1)


def _decimals(step: float) -> int:
    """Decimals that show a change of ``step``: 0 for whole steps, 1 for 0.1, at most 3."""
    if step <= 0 or not math.isfinite(step):
        return 1
    if step >= 1 and float(step).is_integer():
        return 0
    return max(0, min(3, math.ceil(-math.log10(step) - 1e-9)))


@dataclass(frozen=True, eq=False)
class SupplementalPalette:
    """A Supplemental Palette Color LUT: stored values ``first`` .. ``first + len(rgb) - 1``
    are shown in its colours, the others in grey through the window (PS3.4 N.2.1)."""

    first: int
    rgb: np.ndarray
    """``(entries, 3)`` uint8."""

    @property
    def last(self) -> int:
        return self.first + len(self.rgb) - 1

    def colour(self, stored: np.ndarray, grey: np.ndarray) -> np.ndarray:
        """``(rows, columns, 3)`` uint8: the palette's colour where ``stored`` is in its range,
        else the grey display value ``grey`` (the same shape as ``stored``)."""
        index = stored.astype(np.int64) - self.first
        inside = (index >= 0) & (index < len(self.rgb))
        out = np.repeat(grey[..., None], 3, axis=-1)
        out[inside] = self.rgb[index[inside]]
        return out


@dataclass(frozen=True)
class ValueMaps:
    """A file's palette and its Real World Value Mapping per frame (one for a classic image)."""

    palette: SupplementalPalette | None = None
    real_world: tuple[RealWorldValues | None, ...] = ()

    def of_frame(self, frame: int) -> RealWorldValues | None:
        if 0 <= frame < len(self.real_world):
            return self.real_world[frame]
        return self.real_world[0] if len(self.real_world) == 1 else None


@functools.lru_cache(maxsize=32)
def read_value_maps(path: str) -> ValueMaps:
    """The :class:`ValueMaps` of the file at ``path`` (read once; none if unreadable)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        return value_maps_of(ds)
    except Exception:  # a file that cannot be read has nothing to add to its grey pixels
        return ValueMaps()


def value_maps_of(ds: Dataset) -> ValueMaps:
    """The palette and per-frame Real World Value Mappings of the dataset ``ds``."""
    return ValueMaps(palette=supplemental_palette_of(ds), real_world=real_world_values_of(ds))


def real_world_values_of(ds: Dataset) -> tuple[RealWorldValues | None, ...]:
    """The mapping of each frame: an enhanced object's (per frame, else shared functional
    groups), else the image's own; () when it has none."""
    per_frame = _get(ds, "PerFrameFunctionalGroupsSequence")
    shared_items = _get(ds, "SharedFunctionalGroupsSequence")
    shared = _mapping(shared_items[0]) if shared_items else None
    if per_frame:
        frames = tuple(_mapping(item) or shared for item in per_frame)
        return frames if any(frames) else ()
    own = _mapping(ds) or shared
    return (own,) if own is not None else ()


def _mapping(item: Any) -> RealWorldValues | None:
    """The item's Real World Value Mapping: the first with a unit, else the first."""
    mappings = [m for m in (_one_mapping(i) for i in _get(item, "RealWorldValueMappingSequence")
                            or ()) if m is not None]
    return next((m for m in mappings if m.unit), mappings[0] if mappings else None)


def _one_mapping(item: Any) -> RealWorldValues | None:
    first, last = _get(item, "RealWorldValueFirstValueMapped"), _get(
        item, "RealWorldValueLastValueMapped")
    slope, intercept = _get(item, "RealWorldValueSlope"), _get(item, "RealWorldValueIntercept")
    lut = _get(item, "RealWorldValueLUTData")
    if first is None or last is None or (slope is None and not lut):
        return None
    units = _get(item, "MeasurementUnitsCodeSequence")
    unit = str(units[0].get("CodeValue", "") or "").strip() if units else ""
    if unit == NO_UNITS:
        unit = ""
    label = str(_get(item, "LUTLabel") or _get(item, "LUTExplanation") or "").strip()
    return RealWorldValues(
        label=label if unit else "", unit=unit, first=float(first), last=float(last),
        slope=float(slope) if slope is not None else 1.0,
        intercept=float(intercept) if intercept is not None else 0.0,
        lut=tuple(float(v) for v in lut) if slope is None else ())


def supplemental_palette_of(ds: Dataset) -> SupplementalPalette | None:
    """The palette of a monochrome image that asks to be shown in colour (Pixel Presentation
    COLOR or MIXED, or a classic image with a palette); None otherwise."""
    photometric = str(_get(ds, "PhotometricInterpretation") or "").strip().upper()
    presentation = _get(ds, "PixelPresentation")
    if isinstance(presentation, MultiValue | list | tuple):
        presentation = presentation[0] if presentation else ""
    presentation = str(presentation or "").strip().upper()
    if not photometric.startswith("MONOCHROME") or presentation in ("MONOCHROME", "TRUE_COLOR"):
        return None
    channels = []
    first = 0
    for colour in ("Red", "Green", "Blue"):
        descriptor = _get(ds, f"{colour}PaletteColorLookupTableDescriptor")
        data = _get(ds, f"{colour}PaletteColorLookupTableData")
        if not descriptor or len(descriptor) != 3 or not data:
            return None
        entries = int(descriptor[0]) or 65536
        first = int(descriptor[1])
        if int(_get(ds, "PixelRepresentation") or 0) == 1 and first >= 32768:
            first -= 65536
        bits = int(descriptor[2])
        little = ds.original_encoding[1] is not False
        raw = np.frombuffer(bytes(data), dtype=np.uint8 if bits == 8 else
                            ("<u2" if little else ">u2"))
        if raw.size < entries:
            return None
        values = raw[:entries].astype(np.uint32)
        channels.append((values >> 8 if bits > 8 else values).astype(np.uint8))
    return SupplementalPalette(first=first, rgb=np.stack(channels, axis=-1))


def _get(ds: Any, keyword: str) -> Any:
    try:
        return ds.get(keyword)
    except Exception:  # an unparsable value is treated as absent
        return None
