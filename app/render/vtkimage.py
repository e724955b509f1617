"""Bridges between numpy volumes and VTK image data, without copying voxels."""

from __future__ import annotations

import numpy as np
from vtkmodules.util import numpy_support
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkCommonMath import vtkMatrix4x4

from app.volume.geometry import VolumeGeometry

#: numpy dtypes VTK can take without conversion (the ones a CT or MR volume comes in).
_SUPPORTED = {np.dtype(t) for t in ("int8", "uint8", "int16", "uint16", "int32", "uint32",
                                     "float32", "float64")}


def wrap_volume(array: np.ndarray, *, spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
                ) -> vtkImageData:
    """A ``vtkImageData`` sharing ``array``'s memory (shape ``(slices, rows, columns)``).

    VTK's x, y, z are the column, row and slice index. The image's origin is 0 and its spacing
    ``spacing`` (given in VTK order x, y, z); where it sits in the patient is up to the caller
    (a reslice matrix or a prop matrix). The caller must keep ``array`` alive as long as the
    image is used: :func:`wrap_volume` attaches it to the returned object to help with that.

    Raises
    ------
    ValueError
        If the array is not 3-D, not C-contiguous (wrapping would need a copy) or of a dtype VTK
        cannot take as is.
    """
    if array.ndim != 3:
        raise ValueError(f"array must be 3-D (slices, rows, columns), got shape {array.shape}")
    if not array.flags.c_contiguous:
        raise ValueError("array must be C-contiguous to be shared with VTK without a copy")
    if array.dtype not in _SUPPORTED:
        raise ValueError(f"array dtype {array.dtype} is not supported for rendering")
    k, j, i = array.shape
    image = vtkImageData()
    image.SetDimensions(i, j, k)
    image.SetSpacing(*spacing)
    image.SetOrigin(0.0, 0.0, 0.0)
    scalars = numpy_support.numpy_to_vtk(  # type: ignore[no-untyped-call]
        array.reshape(-1), deep=False)
    scalars.SetName("voxels")
    image.GetPointData().SetScalars(scalars)
    image._relay_keepalive = array  # type: ignore[attr-defined]
    return image


def vtk_matrix(matrix: np.ndarray) -> vtkMatrix4x4:
    """A ``vtkMatrix4x4`` holding a 4×4 numpy matrix."""
    out = vtkMatrix4x4()
    set_vtk_matrix(out, matrix)
    return out


def set_vtk_matrix(target: vtkMatrix4x4, matrix: np.ndarray) -> None:
    """Copy a 4×4 numpy matrix into an existing ``vtkMatrix4x4``."""
    m = np.asarray(matrix, dtype=np.float64)
    for r in range(4):
        for c in range(4):
            target.SetElement(r, c, float(m[r, c]))


def prop_matrix(geometry: VolumeGeometry) -> np.ndarray:
    """Matrix placing an image wrapped with the geometry's spacing at its LPS position.

    The image carries the spacing (x = column, y = row, z = slice); this matrix carries the
    rest of the affine: direction cosines, shear of a tilted stack, and the origin.
    """
    k_mm, j_mm, i_mm = geometry.spacing
    return geometry.affine @ np.diag([1.0 / i_mm, 1.0 / j_mm, 1.0 / k_mm, 1.0])


def image_scalars(image: vtkImageData) -> np.ndarray:
    """The scalars of a VTK image as a numpy array ``(z, y, x)`` (a view; copy to keep)."""
    x, y, z = image.GetDimensions()
    values: np.ndarray = numpy_support.vtk_to_numpy(  # type: ignore[no-untyped-call]
        image.GetPointData().GetScalars())
    if values.ndim > 1:
        return values.reshape(z, y, x, -1).squeeze(-1)
    return values.reshape(z, y, x)


def wrap_rgb(rgb: np.ndarray) -> vtkImageData:
    """A 2-D RGB ``vtkImageData`` (e.g. a texture) holding a ``(rows, cols, 3)`` uint8
    picture whose first row is the top one, as :mod:`app.render.offscreen` returns them."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (rows, cols, 3) uint8, got {rgb.shape} {rgb.dtype}")
    rows, cols = rgb.shape[:2]
    flipped = np.ascontiguousarray(rgb[::-1])  # VTK's first row is the bottom one
    image = vtkImageData()
    image.SetDimensions(cols, rows, 1)
    scalars = numpy_support.numpy_to_vtk(  # type: ignore[no-untyped-call]
        flipped.reshape(-1, 3), deep=False)
    image.GetPointData().SetScalars(scalars)
    image._relay_keepalive = flipped  # type: ignore[attr-defined]
    return image
