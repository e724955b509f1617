"""MPR, thick-slab and 3D speed on a generated 512×512×400 CT, measured side by side.

Run from the repository root::

    VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow python bench/bench_mpr.py

Prints what it measured with: the volume (built in memory from ``app.dicom.synth``'s CTA phantom,
the
same shapes ``relay`` writes as DICOM), the OpenGL in use, and medians over repeated calls.
Targets (issue 6): oblique reslice ≤ 20 ms, 20 mm slab MIP ≤ 40 ms, 3D ≥ 10 frames/s moving;
each figure that has one is printed against it ("ok" or "NOT MET"). Oblique slabs at full
quality go through the layer-sampling kernel (``app.render.slab``, built by ``pip install -e .``);
the "before" rows time the same slabs through ``vtkImageReslice`` alone, in the same run.

The "MPR window" section measures what the MPR layout (``app/ui/mpr_widget.py``) does per
event, without Qt: the GUI-thread preview of the planes that moved (fast, ½-resolution grid,
display LUT), the full-quality pictures its worker makes after 150 ms of rest, and how long the
GUI thread is held meanwhile. The 3D section adds the first frame with and without
:meth:`VolumeScene.prepare` done beforehand (the layout does it on a worker thread).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.dicom.synth import head_phantom, paint_plane  # noqa: E402
from app.volume.geometry import VolumeGeometry  # noqa: E402


def build_cta(slices: int = 400, size: int = 512, pixel: float = 0.45, step: float = 0.5,
              noise: float = 3.0) -> tuple[np.ndarray, VolumeGeometry]:
    """The synthetic CTA head as int16 (HU + 1024), painted slice by slice at LPS positions."""
    shapes = head_phantom(0.0, "cta")
    rng = np.random.default_rng(0)
    x0 = -(size - 1) * pixel / 2
    z0 = -(slices - 1) * step / 2
    array = np.empty((slices, size, size), dtype=np.int16)
    for k in range(slices):
        hu = paint_plane(shapes, np.array([x0, x0, z0 + k * step]), np.array([pixel, 0, 0]),
                         np.array([0, pixel, 0]), size, size)
        if noise:
            hu += rng.normal(0, noise, hu.shape).astype(np.float32)
        array[k] = np.rint(hu + 1024)
    affine = np.diag([pixel, pixel, step, 1.0])
    affine[:3, 3] = [x0, x0, z0]
    return array, VolumeGeometry(affine=affine, shape=array.shape)


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """(median, min) wall time and median CPU time of the whole process (all threads), in ms,
    over ``repeat`` calls after one warm-up call. On a shared machine the wall time depends on
    what else runs; the CPU time much less (wall ≈ CPU / cores when the cores are free)."""
    fn()
    times, cpu = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(times), min(times), statistics.median(cpu)


def row(label: str, result: tuple[float, float, float], target: float | None = None,
        per_second: bool = False) -> None:
    """One figure: median and best, CPU time, and against its target when it has one."""
    med, best, cpu = result
    extra = f"   {1000 / med:5.1f} frames/s" if per_second else ""
    if target is None:
        mark = ""
    elif per_second:
        mark = f"   [target >= {1000 / target:g} frames/s: {'ok' if med <= target else 'NOT MET'}]"
    else:
        mark = f"   [target <= {target:g} ms: {'ok' if med <= target else 'NOT MET'}]"
    print(f"  {label:<66} {med:7.1f} ms (min {best:6.1f}, cpu {cpu:6.1f}){extra}{mark}")


def bench_mpr(array: np.ndarray, geometry: VolumeGeometry, repeat: int) -> None:
    from app.render import slab
    from app.render.crosshair import Crosshair
    from app.render.grid import fit_grid
    from app.render.reslice import Reslicer

    rs = Reslicer(array, geometry)
    vtk_only = Reslicer(array, geometry)
    vtk_only._layered = False  # the previous path, for a side-by-side figure
    ch = Crosshair(geometry)
    planes = {"axial": ch.plane("axial"), "coronal": ch.plane("coronal"),
              "sagittal": ch.plane("sagittal")}
    ch.rotate("sagittal", 30.0)
    planes["oblique 30°"] = ch.plane("axial")
    ch.rotate("axial", 20.0)
    planes["double oblique 30°/20°"] = ch.plane("coronal")
    grids = {name: fit_grid(geometry, plane) for name, plane in planes.items()}
    state = {"shift": 0.0}

    def moving(name: str, reslicer: Reslicer = rs, **kw: object) -> Callable[[], object]:
        grid = grids[name]
        coarse = kw.pop("coarsen", 1)

        def call() -> object:  # move the plane a little each time, as when scrolling
            state["shift"] = (state["shift"] + 0.37) % 5.0
            plane = grid.plane.moved_to(grid.plane.center + state["shift"] * grid.normal)
            return reslicer.slice(grid.with_plane(plane).coarsened(int(coarse)), **kw)  # type: ignore[arg-type]
        return call

    shapes = ", ".join(str(g.shape) for g in grids.values())
    print(f"MPR (linear interpolation; output grids {shapes}"
          f" at {grids['axial'].pixel_mm} mm; oblique slabs through the layer kernel: "
          f"{'built' if slab.is_available(array) else 'NOT BUILT, vtkImageReslice instead'}):")
    for name in grids:
        row(f"thin reslice, {name}", timed(moving(name), repeat), 20.0)
    for name in grids:
        samples = rs.slice(grids[name], slab_mm=20.0).samples
        row(f"20 mm MIP slab, {name} ({samples} samples)",
            timed(moving(name, slab_mm=20.0), repeat), 40.0)
    for name in ("oblique 30°", "double oblique 30°/20°"):
        row(f"  before: same through vtkImageReslice, {name}",
            timed(moving(name, vtk_only, slab_mm=20.0), repeat), 40.0)
    for name in ("oblique 30°", "double oblique 30°/20°"):
        row(f"20 mm MinIP slab, {name}", timed(moving(name, slab_mm=20.0, mode="minip"), repeat),
            40.0)
        row(f"20 mm average slab, {name}", timed(moving(name, slab_mm=20.0, mode="avg"), repeat),
            40.0)
        row(f"50 mm MIP slab, {name}, full quality", timed(moving(name, slab_mm=50.0), repeat))
    for name in ("oblique 30°", "double oblique 30°/20°"):
        row(f"20 mm MIP slab, {name}, while dragging (fast, ½-res grid)",
            timed(moving(name, slab_mm=20.0, fast=True, coarsen=2), repeat), 40.0)
        row(f"50 mm MIP slab, {name}, while dragging", timed(
            moving(name, slab_mm=50.0, fast=True, coarsen=2), repeat))
    row("20 mm average slab, axial", timed(moving("axial", slab_mm=20.0, mode="avg"), repeat),
        40.0)
    row("20 mm MinIP slab, coronal", timed(moving("coronal", slab_mm=20.0, mode="minip"), repeat),
        40.0)


def bench_mpr_window(array: np.ndarray, geometry: VolumeGeometry, repeat: int) -> None:
    """What the MPR layout costs per drag step, and how much of it the GUI thread carries."""
    import threading

    from app.render.crosshair import Crosshair
    from app.render.display import DisplayWindow, to_display, window_lut
    from app.render.grid import fit_grid
    from app.render.reslice import Reslicer
    from app.render.reslice_queue import ResliceJob, ResliceQueue

    gui = Reslicer(array, geometry, background=0)
    ch = Crosshair(geometry)
    ch.rotate("sagittal", 30.0)
    ch.rotate("axial", 20.0)
    lut = window_lut(array.dtype, 1.0, -1024.0, DisplayWindow(150.0, 600.0))
    names = ("axial", "coronal", "sagittal")
    step = {"i": 0}

    def drag_step(slab: float, coarsen: int = 2) -> Callable[[], object]:
        def call() -> object:  # moving the point in the axial view moves the two other planes
            step["i"] += 1
            ch.move("axial", 0.7 if step["i"] % 2 else -0.7, 0.4)
            for name in ("coronal", "sagittal"):
                grid = fit_grid(geometry, ch.plane(name))  # type: ignore[arg-type]
                out = gui.slice(grid.coarsened(coarsen), slab_mm=slab, fast=True,
                                fast_step=float(coarsen))
                to_display(out.pixels, lut)
            return None
        return call

    print("MPR window (double-oblique planes, what one mouse-move event costs the GUI thread):")
    row("drag step, thin: preview of 2 planes (fast, ½-res) + LUT", timed(drag_step(0.0), repeat),
        40.0)
    row("drag step, 20 mm MIP: preview of 2 planes + LUT", timed(drag_step(20.0), repeat), 40.0)
    for coarsen in (3, 4):  # where the layout goes when previews take more than 30 ms
        row(f"drag step, 20 mm MIP, previews at 1/{coarsen} resolution",
            timed(drag_step(20.0, coarsen), repeat), 40.0)
        row(f"drag step, 50 mm MIP, previews at 1/{coarsen} resolution",
            timed(drag_step(50.0, coarsen), repeat), 40.0)

    done = threading.Event()
    finished: list[str] = []

    def on_done(job: ResliceJob, _result: object) -> None:
        finished.append(job.key)
        if len(finished) == 3:
            done.set()

    queue = ResliceQueue(Reslicer(array, geometry, background=0), on_done)
    try:
        for slab in (0.0, 20.0):
            walls, gaps = [], []
            for r in range(max(3, repeat // 3)):
                finished.clear()
                done.clear()
                t0 = time.perf_counter()
                for token, name in enumerate(names):
                    queue.submit(ResliceJob(name, fit_grid(geometry, ch.plane(name)),  # type: ignore[arg-type]
                                            slab_mm=slab, token=r * 3 + token))
                last, worst = t0, 0.0
                while not done.is_set():  # the GUI thread, ticking meanwhile
                    time.sleep(0.002)
                    now = time.perf_counter()
                    worst, last = max(worst, now - last), now
                walls.append((time.perf_counter() - t0) * 1000)
                gaps.append(worst * 1000)
            label = "thin" if not slab else f"{slab:g} mm MIP"
            print(f"  {'full quality, 3 planes, ' + label + ', on the worker':<58} "
                  f"{statistics.median(walls):7.1f} ms   (GUI thread held at most "
                  f"{max(gaps):.1f} ms meanwhile)")
    finally:
        queue.close()


def bench_3d(array: np.ndarray, geometry: VolumeGeometry, mapper: str, size: int,
             frames: int, max_voxels: int | None) -> None:
    from app.render.offscreen import OffscreenView
    from app.render.scene3d import VolumeScene

    t0 = time.perf_counter()
    scene = VolumeScene(array, geometry, intercept=-1024.0, preset="cta", mapper=mapper,  # type: ignore[arg-type]
                        max_voxels=max_voxels)
    setup = (time.perf_counter() - t0) * 1000
    view = OffscreenView(scene.renderer, (size, size))
    t0 = time.perf_counter()
    view.render()
    first = (time.perf_counter() - t0) * 1000
    print(f"3D, {mapper} mapper, volume {scene.array.shape}, {size}×{size} window "
          f"({view.window.GetClassName()}):\n  scene set-up {setup:.0f} ms; first frame "
          f"{first:.0f} ms (shading gradients / texture upload)")
    if mapper == "fixed":
        prepared = VolumeScene(array, geometry, intercept=-1024.0, preset="cta", mapper="fixed",
                               max_voxels=max_voxels)
        t0 = time.perf_counter()
        prepared.prepare()
        prep = (time.perf_counter() - t0) * 1000
        other = OffscreenView(prepared.renderer, (size, size))
        t0 = time.perf_counter()
        other.render()
        quick = (time.perf_counter() - t0) * 1000
        print(f"  with prepare() first ({prep:.0f} ms, off the GUI thread in the 3D layout): "
              f"first frame {quick:.0f} ms")
        other.close()

    def orbit() -> object:
        scene.rotate(azimuth=4.0)
        return view.render()

    for preset in ("cta", "bone", "mip"):
        scene.set_preset(preset)
        scene.reset_camera()
        scene.set_interacting(False)
        row(f"{preset}: still (full quality)", timed(orbit, frames), per_second=True)
        scene.set_interacting(True)
        row(f"{preset}: rotating (interactive quality)", timed(orbit, frames), 100.0,
            per_second=True)
        scene.zoom(2.0)
        row(f"{preset}: rotating, zoomed 2× (head fills the view)", timed(orbit, frames), 100.0,
            per_second=True)
    view.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--window", type=int, default=512, help="3D window size (pixels)")
    parser.add_argument("--mappers", default="fixed,gpu")
    parser.add_argument("--skip-3d", action="store_true")
    args = parser.parse_args()

    import vtkmodules.vtkCommonCore as core

    t0 = time.perf_counter()
    array, geometry = build_cta(args.slices, args.size)
    print("Volume: synthetic CTA head (app.dicom.synth.head_phantom 'cta', painted at LPS "
          f"positions, "
          f"±3 HU noise), {array.shape} {array.dtype} (slices, rows, columns), spacing "
          f"{geometry.spacing} mm, {array.nbytes / 2**20:.0f} MiB, built in "
          f"{time.perf_counter() - t0:.1f} s")
    print(f"VTK {core.vtkVersion.GetVTKVersion()}, {os.cpu_count()} CPUs, "
          f"VTK_DEFAULT_OPENGL_WINDOW={os.environ.get('VTK_DEFAULT_OPENGL_WINDOW', '(unset)')}")
    bench_mpr(array, geometry, args.repeat)
    bench_mpr_window(array, geometry, args.repeat)
    if not args.skip_3d:
        for mapper in args.mappers.split(","):
            if mapper.strip() == "fixed":
                bench_3d(array, geometry, "fixed", args.window, args.frames, None)
            bench_3d(array, geometry, mapper.strip(), args.window, args.frames, 32_000_000)


if __name__ == "__main__":
    main()
