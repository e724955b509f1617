"""3D banding against speed: the volume the 3D view renders, before (block-averaged to integer
factors, unsmoothed) and now (resampled with an anti-aliasing kernel to equal voxels under the
same budget, smoothed 0.8 voxel), side by side in one run, on the real Visible Human head (when
../shared/data is there), a smooth synthetic skull shell and a generated CTA.

Run from the repository root::

    VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow .venv/bin/python bench/bench_3d_banding.py

Banding is the ripple of the still bone picture (``tests/render/banding.py``: mean absolute
difference, in grey levels, between the picture and its 5×5 blur inside the object): wood-grain
rings are exactly such ripples. On the smooth shell it is all artefact; on real anatomy part of
it is the bone's own texture. Speed: the time to make the scene (resampling, smoothing, shading
gradients), one still frame, and frames per second while rotating (target >= 10).
Pictures are written to ``--out`` for looking at.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.render.offscreen import OffscreenView  # noqa: E402
from app.render.scene3d import VolumeScene  # noqa: E402
from app.volume.geometry import VolumeGeometry  # noqa: E402
from bench.bench_mpr import build_cta  # noqa: E402
from tests.render.banding import ripple, skull_shell  # noqa: E402

BUDGET = 32_000_000
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def block_mean_before(array: np.ndarray, geometry: VolumeGeometry, max_voxels: int
                      ) -> tuple[np.ndarray, VolumeGeometry]:
    """What 3D rendered before: integer block means, in-plane first, no smoothing."""
    k, j, i = array.shape
    fz = fy = fx = 1
    while math.ceil(k / fz) * math.ceil(j / fy) * math.ceil(i / fx) > max_voxels:
        if fy <= fz:
            fy, fx = fy + 1, fx + 1
        else:
            fz += 1
    if (fz, fy, fx) == (1, 1, 1):
        return array, geometry
    nk, nj, ni = k // fz, j // fy, i // fx
    out = np.empty((nk, nj, ni), dtype=array.dtype)
    for z in range(nk):
        block = array[z * fz:(z + 1) * fz, :nj * fy, :ni * fx].astype(np.float32)
        out[z] = np.rint(block.reshape(fz, nj, fy, ni, fx).mean(axis=(0, 2, 4)))
    scale = np.array([[fx, 0, 0, (fx - 1) / 2], [0, fy, 0, (fy - 1) / 2],
                      [0, 0, fz, (fz - 1) / 2], [0, 0, 0, 1]], dtype=np.float64)
    return out, VolumeGeometry(affine=geometry.affine @ scale, shape=out.shape)


def visible_human() -> tuple[np.ndarray, VolumeGeometry] | None:
    folder = DATA / "ct-head" / "visible-human-male-head-1mm"
    if not folder.is_dir():
        return None
    from app.imports.importer import import_paths
    from app.render.mpr import mpr_source
    from app.store.local import Store
    from app.volume.loader import load_stack
    from app.volume.stack import plan_series

    store = Store(Path(tempfile.mkdtemp(prefix="bench3d-")))
    import_paths(store, [str(folder)])
    (series,) = [s for st in store.studies() for s in st.series]
    plan = plan_series(store.instances(series.series_instance_uid),
                       series.frame_of_reference_uid)
    assert plan.main is not None
    volume, _ = load_stack(plan.main)
    source = mpr_source(volume, modality="CT")
    return source.array, source.geometry


def measure(make: Callable[[], VolumeScene], window: int, frames: int, out: Path,
            label: str) -> str:
    t0 = time.perf_counter()
    scene = make()
    scene.prepare()
    made_s = time.perf_counter() - t0
    box = scene.content_bounds(300.0)
    if box is not None:
        scene.fit_bounds = tuple(float(v) for v in np.array(box) + np.array([-20.0, 20.0] * 3))
    scene.reset_camera("left")
    scene.rotate(azimuth=30.0, elevation=10.0)
    view = OffscreenView(scene.renderer, (window, window))
    t0 = time.perf_counter()
    still = view.render()
    still_ms = (time.perf_counter() - t0) * 1000
    from PIL import Image
    Image.fromarray(still).save(out / f"{label}.png")
    scene.set_interacting(True)
    for _ in range(4):  # let the image sample distance settle on the budget
        scene.rotate(azimuth=4.0)
        view.render()
    times = []
    for _ in range(frames):
        scene.rotate(azimuth=4.0)
        t0 = time.perf_counter()
        view.render()
        times.append(time.perf_counter() - t0)
    view.close()
    fps = 1.0 / float(np.median(times))
    voxels = "×".join(map(str, scene.array.shape[::-1]))
    spacing = "×".join(f"{s:.2f}" for s in scene.geometry.spacing[::-1])
    return (f"ripple {ripple(still):5.2f} | {voxels} at {spacing} mm | scene {made_s:5.1f} s, "
            f"still {still_ms:5.0f} ms, moving {fps:5.1f} frames/s "
            f"[{'ok' if fps >= 10 else 'NOT MET'} >= 10]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--slices", type=int, default=300, help="of the generated CTA")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_3d_banding"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPUs, window {args.window}², budget {BUDGET:,} voxels, "
          f"VTK_DEFAULT_OPENGL_WINDOW={os.environ.get('VTK_DEFAULT_OPENGL_WINDOW', '(unset)')}, "
          f"pictures in {args.out}")
    volumes: dict[str, tuple[np.ndarray, VolumeGeometry] | None] = {
        "visible-human": visible_human(),
        # the smooth shell at 0.45 mm: 38 M voxels, over the budget like a real CTA
        "shell": skull_shell((320, 336, 336), (0.45, 0.45, 0.45), 70.0, 63.0),
        "cta": build_cta(args.slices, 512),
    }
    for name, volume in volumes.items():
        if volume is None:
            print(f"\n{name}: not found, skipped")
            continue
        array, geometry = volume
        print(f"\n{name} {array.shape[::-1]}, bone preset")

        def before(a: np.ndarray = array, g: VolumeGeometry = geometry) -> VolumeScene:
            small, sg = block_mean_before(a, g, BUDGET)
            return VolumeScene(small, sg, intercept=-1024.0, preset="bone", max_voxels=None,
                               smooth=0.0)

        def now(a: np.ndarray = array, g: VolumeGeometry = geometry) -> VolumeScene:
            return VolumeScene(a, g, intercept=-1024.0, preset="bone", max_voxels=BUDGET)

        for label, make in (("before", before), ("now", now)):
            result = measure(make, args.window, args.frames, args.out, f"{name}-{label}")
            print(f"  {label:7s} {result}")


if __name__ == "__main__":
    main()
