"""Build hook for the one C extension (``app.render._slab``); everything else is in pyproject.

``pip install -e .`` builds it in place; ``python setup.py build_ext --inplace`` rebuilds it.
It is optional: without a C compiler Relay falls back to ``vtkImageReslice`` (slower oblique
slabs, same pictures).
"""

import os

from setuptools import Extension, setup

setup(ext_modules=[Extension("app.render._slab", ["app/render/_slab.c"], optional=True,
                             extra_compile_args=["/O2"] if os.name == "nt" else ["-O3"])])
