"""Rendering with numpy and VTK (never Qt): windowing, slices, MPR, slabs, 3D."""
