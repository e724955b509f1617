"""Rendering with numpy and VTK (never Qt): windowing, slices, MPR, slabs, 3D.

Modules, from geometry to pixels:

* :mod:`~app.render.planes` — :class:`Plane` in LPS; standard axial/coronal/sagittal views from
  the patient axes (radiological display); acquisition frames.
* :mod:`~app.render.crosshair` — :class:`Crosshair`, the linked MPR state (point + rotation):
  move, scroll, rotate about a view's normal, reset; listeners.
* :mod:`~app.render.grid` — :class:`SliceGrid`, output pixels in mm: pixel↔LPS, edge
  orientation letters, scale bar; :func:`fit_grid`.
* :mod:`~app.render.reslice` — :class:`Reslicer`: oblique reslice and MIP/MinIP/average slabs
  with ``vtkImageReslice`` on the stored array, shared without copying.
* :mod:`~app.render.slab` — full-quality oblique slabs sampled where each ray crosses the
  voxel layers (a small C kernel, ``_slab.c``; ``vtkImageReslice`` when it is not built).
* :mod:`~app.render.reslice_queue` — full-quality reslices on a worker thread, newest request
  per view first.
* :mod:`~app.render.regrid` — regular volume from unevenly spaced slices, with a note.
* :mod:`~app.render.mpr` — what MPR and 3D work on: the loading volume itself, or a resampled
  (uneven stack) or modality-unit (mixed rescale) copy, with sentences for the user.
* :mod:`~app.render.downsample` — block averaging (3D on a CPU).
* :mod:`~app.render.volume_presets`, :mod:`~app.render.scene3d`, :mod:`~app.render.offscreen` — 3D
  volume rendering/MIP scene (camera, clipping, level of detail) and offscreen capture.
* :mod:`~app.render.export` — :func:`render_plane`, what ``relay render --plane`` calls.
* :mod:`~app.render.vtkimage` — numpy ↔ VTK image bridges.
"""
