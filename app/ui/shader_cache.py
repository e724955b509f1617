"""Where the software OpenGL (Mesa's llvmpipe) keeps the shaders it compiled: in Relay's home.

Mesa compiles each shader with LLVM the first time a process draws with it, and keeps the
machine code in an on-disk cache that later processes read instead. Relay points that cache at
its own folder in the home (private, like the rest of it), before any OpenGL context exists:
the 3D view's first pieces then load their shaders instead of compiling them
(``bench/bench_3d_open.py`` prints the first 3D open with a cold and a warm cache).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

#: Mesa reads it when its first screen is made (the first OpenGL context of the process).
MESA_CACHE_DIR = "MESA_SHADER_CACHE_DIR"
#: Set by the user (or a test) to turn Mesa's cache off: Relay leaves it off.
MESA_CACHE_DISABLE = "MESA_SHADER_CACHE_DISABLE"


def shader_cache_dir(home: Path) -> Path:
    """The folder of ``home`` that holds the compiled shaders."""
    return home / "cache" / "shaders"


def use_shader_cache(home: Path) -> Path | None:
    """Point Mesa's shader cache at :func:`shader_cache_dir` (made, 0700) and return it; None
    when the user chose a cache of their own or none (the environment already says so), or
    the folder cannot be made (Mesa then keeps its default). Call it before the first OpenGL
    context of the process."""
    if os.environ.get(MESA_CACHE_DIR) or os.environ.get(MESA_CACHE_DISABLE, "").lower() in (
            "1", "true", "yes"):
        return None
    folder = shader_cache_dir(home)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
    except OSError as exc:  # a read-only home: Mesa's own default cache
        log.info("the shader cache stays Mesa's own: %s", exc.strerror)
        return None
    os.environ[MESA_CACHE_DIR] = str(folder)
    return folder
