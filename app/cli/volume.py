"""Volume subcommands: ``relay load SERIES --json`` and ``relay render SERIES --out FILE.png``
(one stored slice, or with ``--plane axial|coronal|sagittal [--slab MM --mode mip|minip|avg]`` an
MPR plane or slab through the same code as the MPR views)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from app.cli.main import TerminalProgress, cancel_on_sigint, open_store, print_json
from app.dicom import decodepool
from app.dicom.pixels import needs_decoder
from app.errors import GeometryError, RelayError
from app.render.slice_png import render_ref, write_png
from app.startup import startup_done
from app.store.local import Store
from app.tasks import Progress
from app.volume.early_slice import early_slice
from app.volume.loader import VolumeLoader, load_stack
from app.volume.plans import series_plan
from app.volume.stack import SeriesPlan, Stack


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("load", parents=[common],
                       help="load a series as a volume and report shape, geometry and timings")
    p.add_argument("series", metavar="SERIES_UID")
    p.add_argument("--stack", type=int, default=0, help="which stack of the series (default 0)")
    p.add_argument("--slice", type=int, default=None, help="slice to decode first")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=cmd_load)

    p = sub.add_parser("render", parents=[common],
                       help="write one slice, or an MPR plane or slab, of a series as an 8-bit "
                            "PNG (no display needed)")
    p.add_argument("series", metavar="SERIES_UID")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.add_argument("--slice", type=int, default=None,
                   help="stored slice index (default: the middle); not with --plane")
    p.add_argument("--window", type=_window, default=None, metavar="C,W",
                   help="window centre and width (default: the file's)")
    p.add_argument("--stack", type=int, default=0, help="which stack of the series (default 0)")
    p.add_argument("--plane", choices=("axial", "coronal", "sagittal"), default=None,
                   help="reformat the volume to this plane through its centre (as the MPR view)")
    p.add_argument("--slab", type=float, default=0.0, metavar="MM",
                   help="slab thickness in mm, 1 to 50 (default: a thin plane); needs --plane")
    p.add_argument("--mode", choices=("mip", "minip", "avg"), default="mip",
                   help="how a slab is projected (default mip)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object describing the picture")
    p.set_defaults(handler=cmd_render)


def _window(text: str) -> tuple[float, float]:
    try:
        center, width = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected C,W such as 40,80") from None
    if width <= 0:
        raise argparse.ArgumentTypeError("the window width must be above 0")
    return center, width


def stored_plan(store: Store, series_uid: str) -> SeriesPlan:
    """Plan a stored series, or raise a :class:`~app.errors.RelayError` saying what is wrong."""
    series = store.series(series_uid)
    if series is None:
        raise RelayError(f"no series {series_uid} in the store")
    plan = series_plan(store, series_uid, series.frame_of_reference_uid)
    if not plan.stacks:
        raise GeometryError(f"series {series_uid} has no images")
    return plan


def pick_stack(plan: SeriesPlan, index: int) -> Stack:
    if not 0 <= index < len(plan.stacks):
        raise RelayError(f"stack {index} asked; the series has {len(plan.stacks)}")
    return plan.stacks[index]


def cmd_load(args: argparse.Namespace) -> int:
    # Program start-up, not part of the load: the store (open long before in the window), and
    # the codec processes only when the series needs them. This process imports no codec:
    # pydicom and its plug-ins (~27 MB) stay out of the process that holds the volume.
    store = open_store(args)
    if needs_decoder(store.pixel_formats(args.series)):
        decodepool.start()
    startup_done()
    started = time.monotonic()
    # the middle slice is decoded while the series is planned only when it is the one asked
    early = (early_slice(store, args.series, codecs=False)
             if args.stack == 0 and args.slice is None else None)
    plan = stored_plan(store, args.series)
    stack = pick_stack(plan, args.stack)
    progress = Progress("Loading")
    cancel_on_sigint(progress)
    bar = TerminalProgress(progress, enabled=None if not args.json else False)
    loader = VolumeLoader.for_stack(stack, focus=args.slice, progress=progress, started=started,
                                    early=early, codecs_here=False)
    try:
        volume = loader.run()
    finally:
        bar.close()
    issues = list(plan.issues) if args.stack == 0 else list(stack.issues)
    out = {
        "shape": list(volume.shape),
        "dtype": str(volume.array.dtype),
        "spacing_mm": [round(v, 6) for v in volume.spacing],
        "affine": [[round(float(v), 6) for v in row] for row in volume.geometry.affine],
        "geometry_issues": issues,
        "failed_slices": [{"path": f.path, "reason": f.reason} for f in volume.failed_slices],
        "first_slice_seconds": round(loader.first_slice_seconds or 0.0, 4),
        "seconds": round(loader.seconds or 0.0, 4),
    }
    if args.json:
        print_json(out)
    else:
        _print_load(out, len(plan.stacks))
    return 130 if progress.cancelled else 0


def _print_load(out: dict[str, Any], stacks: int) -> None:
    w = sys.stdout.write
    shape = "×".join(str(n) for n in out["shape"])
    spacing = " × ".join(f"{v:g}" for v in out["spacing_mm"])
    w(f"{shape} {out['dtype']}, voxels {spacing} mm, loaded in {out['seconds']:.2f} s "
      f"(first slice {out['first_slice_seconds']:.3f} s)")
    w(f", {stacks} stacks\n" if stacks > 1 else "\n")
    for issue in out["geometry_issues"]:
        w(f"  ! {issue}\n")
    for failed in out["failed_slices"]:
        w(f"  failed: {failed['path']}: {failed['reason']}\n")


def cmd_render(args: argparse.Namespace) -> int:
    store = open_store(args)
    plan = stored_plan(store, args.series)
    stack = pick_stack(plan, args.stack)
    if args.plane is not None:
        return _render_plane(args, store, stack)
    if args.slab:
        raise RelayError("--slab needs --plane (axial, coronal or sagittal)")
    n = len(stack.slices)
    k = n // 2 if args.slice is None else args.slice
    if not 0 <= k < n:
        raise RelayError(f"slice {k} asked; the stack has {n} (0 to {n - 1})")
    image = render_ref(stack.slices[k], args.window)
    write_png(image, args.out)
    if args.json:
        print_json({"out": str(args.out), "slice": k, "shape": list(image.shape)})
    return 0


def _render_plane(args: argparse.Namespace, store: Store, stack: Stack) -> int:
    """``relay render --plane``: load the volume and reformat it as the MPR view does."""
    if args.slice is not None:
        raise RelayError("--slice picks a stored slice; with --plane the plane goes through "
                         "the volume centre")
    if args.slab and not 1.0 <= args.slab <= 50.0:
        raise RelayError(f"--slab must be between 1 and 50 mm, got {args.slab:g}")
    # VTK only now: the rest of the CLI (and the core) runs without it
    from app.render.export import render_plane
    from app.render.mpr import mpr_source

    series = store.series(args.series)
    progress = Progress("Loading")
    cancel_on_sigint(progress)
    bar = TerminalProgress(progress, enabled=None if not args.json else False)
    try:
        volume, _ = load_stack(stack, progress=progress)
    finally:
        bar.close()
    if progress.cancelled:
        return 130
    source = mpr_source(volume, modality=series.modality if series else "")
    window = args.window or volume.default_window
    palette = None  # a perfusion map's colours, read from its stored values as MPR does
    first = volume.slices[0].path if volume.slices else None
    if first is not None and volume.uniform_rescale is not None:
        from app.dicom.value_maps import read_value_maps

        palette = read_value_maps(str(first)).palette
    image = render_plane(source.array, source.geometry, plane=args.plane, slab_mm=args.slab,
                         mode=args.mode, window=window, slope=source.slope,
                         intercept=source.intercept, background=source.background,
                         align="patient", palette=palette,
                         invert=volume.photometric_interpretation == "MONOCHROME1")
    write_png(image.pixels, args.out)
    labels = image.grid.labels
    out = {"out": str(args.out), "plane": args.plane, "shape": list(image.pixels.shape),
           "pixel_mm": round(image.grid.pixel_mm, 6), "slab_mm": image.slab_mm,
           "mode": image.mode, "window": list(image.window),
           "labels": {"left": labels.left, "right": labels.right, "top": labels.top,
                      "bottom": labels.bottom},
           "notes": list(source.notes)}
    if args.json:
        print_json(out)
    else:
        for note in source.notes:
            sys.stderr.write(f"relay: {note}\n")
    return 0
