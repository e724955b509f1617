"""3D banding against speed: ray sample spacing before (1 voxel still, 2 moving), ½ voxel still
with 1 moving, and now (½ voxel still, 2 moving), side by side in one run, on a generated CTA.

Run from the repository root::

    VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow .venv/bin/python bench/bench_3d_banding.py

Banding is measured as the mean absolute difference (8-bit grey levels) between a frame and a
reference frame of the same view sampled 8 times per voxel: wood-grain bands are exactly the
error of sampling too sparsely along the rays. Speed is frames per second while rotating (the
interactive quality, whose image sample distance adapts to the 15 frames/s budget), and the time
of one still frame. Target: >= 10 frames/s moving.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.render.offscreen import OffscreenView  # noqa: E402
from app.render.scene3d import VolumeScene  # noqa: E402
from bench.bench_mpr import build_cta  # noqa: E402

SETTINGS = {"before (1 voxel still, 2 moving)": (1.0, 2.0),
            "1/2 voxel still, 1 moving": (0.5, 1.0),
            "now (1/2 voxel still, 2 moving)": (0.5, 2.0)}


def frame(scene: VolumeScene, view: OffscreenView) -> np.ndarray:
    return np.asarray(view.render(), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--frames", type=int, default=12)
    args = parser.parse_args()
    array, geometry = build_cta(args.slices, args.size)
    print(f"CTA {array.shape}, {os.cpu_count()} CPUs, window {args.window}², "
          f"VTK_DEFAULT_OPENGL_WINDOW={os.environ.get('VTK_DEFAULT_OPENGL_WINDOW', '(unset)')}")
    for preset in ("bone", "cta"):
        reference = VolumeScene(array, geometry, intercept=-1024.0, preset=preset,
                                fine_sample_factor=0.125)
        reference.prepare()
        ref_view = OffscreenView(reference.renderer, (args.window, args.window))
        reference.rotate(azimuth=30.0, elevation=15.0)
        truth = frame(reference, ref_view)
        ref_view.close()
        print(f"\n{preset}: scene {reference.array.shape} ({reference.note or 'not averaged'})")
        for label, (fine, moving) in SETTINGS.items():
            scene = VolumeScene(array, geometry, intercept=-1024.0, preset=preset,
                                fine_sample_factor=fine, moving_sample_factor=moving)
            scene.prepare()
            view = OffscreenView(scene.renderer, (args.window, args.window))
            scene.rotate(azimuth=30.0, elevation=15.0)
            t0 = time.perf_counter()
            still = frame(scene, view)
            still_ms = (time.perf_counter() - t0) * 1000
            diff = np.abs(still - truth)
            error, p99 = float(diff.mean()), float(np.percentile(diff[truth.sum(axis=2) > 0], 99))
            scene.set_interacting(True)
            for _ in range(4):  # let the image sample distance settle on the budget
                scene.rotate(azimuth=4.0)
                view.render()
            times = []
            for _ in range(args.frames):
                scene.rotate(azimuth=4.0)
                t0 = time.perf_counter()
                view.render()
                times.append(time.perf_counter() - t0)
            fps = 1.0 / float(np.median(times))
            print(f"  {label:34s} still: error {error:5.2f} (p99 {p99:4.1f}) grey levels, "
                  f"{still_ms:6.0f} ms | "
                  f"moving: {fps:5.1f} frames/s "
                  f"[{'ok' if fps >= 10 else 'NOT MET'} >= 10], image sample distance "
                  f"{scene.image_sample_distance:.2f}")
            view.close()


if __name__ == "__main__":
    main()
