"""Volume-rendering presets for CT, as data (HU control points), and a MIP preset maker.

Control points are in Hounsfield units; :class:`app.render.scene3d.VolumeScene` converts them to
stored values with the series' rescale slope and intercept. The HU-based presets only make sense
for CT; MR is rendered with :func:`mip_preset` and a window taken from the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Blend = Literal["composite", "mip"]


@dataclass(frozen=True)
class VolumePreset:
    """How values map to colour and opacity in a 3D render.

    Attributes
    ----------
    name
        Key used by the UI and the CLI.
    title
        What the user reads.
    blend
        ``"composite"`` (volume rendering) or ``"mip"`` (maximum intensity projection).
    colors
        ``(HU, red, green, blue)`` control points, components 0..1.
    opacity
        ``(HU, alpha)`` control points (opacity per mm of tissue, VTK's unit distance).
    gradient_opacity
        Optional ``(gradient HU/mm, factor)`` points, to show boundaries rather than bulk.
    shade
        Light the surface (needs gradients: slower first frame, better shape).
    """

    name: str
    title: str
    blend: Blend
    colors: tuple[tuple[float, float, float, float], ...]
    opacity: tuple[tuple[float, float], ...]
    gradient_opacity: tuple[tuple[float, float], ...] = ()
    shade: bool = True
    ambient: float = 0.25
    diffuse: float = 0.8
    specular: float = 0.25
    specular_power: float = 12.0


CTA_VESSELS = VolumePreset(
    name="cta", title="CTA vessels", blend="composite",
    colors=((-1024, 0, 0, 0), (110, 0.45, 0.05, 0.04), (200, 0.85, 0.2, 0.15),
            (400, 1.0, 0.75, 0.6), (900, 1.0, 0.95, 0.88), (3071, 1, 1, 1)),
    opacity=((-1024, 0), (110, 0), (170, 0.2), (300, 0.6), (600, 0.75), (3071, 0.8)),
)

BONE = VolumePreset(
    name="bone", title="Bone", blend="composite",
    colors=((-1024, 0, 0, 0), (300, 0.55, 0.25, 0.15), (550, 0.9, 0.82, 0.6),
            (1000, 1.0, 0.98, 0.9), (3071, 1, 1, 1)),
    opacity=((-1024, 0), (320, 0), (600, 0.5), (1100, 0.85), (3071, 0.9)),
    specular=0.35,
)

SOFT_TISSUE = VolumePreset(
    name="soft", title="Soft tissue / skin", blend="composite",
    colors=((-1024, 0, 0, 0), (-500, 0.75, 0.5, 0.4), (0, 0.92, 0.72, 0.6),
            (300, 1.0, 0.9, 0.85), (3071, 1, 1, 1)),
    opacity=((-1024, 0), (-550, 0), (-350, 0.85), (3071, 0.95)),
    gradient_opacity=((0, 0.0), (40, 0.6), (200, 1.0)),
    specular=0.15,
)

BRAIN = VolumePreset(
    name="brain", title="Brain (cut away the scalp and skull first)", blend="composite",
    colors=((-1024, 0, 0, 0), (0, 0.2, 0.2, 0.25), (25, 0.75, 0.6, 0.6), (45, 0.95, 0.85, 0.8),
            (100, 1, 1, 1), (3071, 1, 1, 1)),
    opacity=((-1024, 0), (5, 0), (20, 0.04), (40, 0.12), (70, 0.15), (110, 0), (3071, 0)),
    gradient_opacity=((0, 0.3), (20, 1.0)),
)


def mip_preset(center: float = 200.0, width: float = 700.0) -> VolumePreset:
    """Maximum intensity projection, grey over the window ``center`` ± ``width``/2 (HU).

    The grey level is carried by the opacity over a black background, so that everything below
    the window is fully transparent and the ray caster can skip it (about 5× faster on CT).
    """
    lo, hi = center - width / 2, center + width / 2
    return VolumePreset(name="mip", title=f"MIP {center:g}/{width:g}", blend="mip",
                        colors=((lo, 1, 1, 1), (hi, 1, 1, 1)),
                        opacity=((lo, 0.0), (hi, 1.0)), shade=False)


PRESETS: dict[str, VolumePreset] = {p.name: p for p in
                                    (CTA_VESSELS, BONE, SOFT_TISSUE, BRAIN, mip_preset())}
