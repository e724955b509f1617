"""Mesa's compiled shaders are kept in Relay's home, private, and used by the next process."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from app.ui.shader_cache import MESA_CACHE_DIR, shader_cache_dir, use_shader_cache

REPO = Path(__file__).resolve().parents[2]

#: A process as ``relay`` starts: the cache pointed at the home, then a first OpenGL frame.
DRAW = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from app.ui.shader_cache import use_shader_cache
    use_shader_cache(Path(sys.argv[1]))
    from vtkmodules.vtkFiltersSources import vtkSphereSource
    from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper, vtkRenderer
    from app.render.offscreen import OffscreenView
    sphere = vtkSphereSource()
    mapper = vtkPolyDataMapper()
    mapper.SetInputConnection(sphere.GetOutputPort())
    actor = vtkActor()
    actor.SetMapper(mapper)
    renderer = vtkRenderer()
    renderer.AddActor(actor)
    view = OffscreenView(renderer, (64, 64))
    t = time.perf_counter()
    view.render()
    print((time.perf_counter() - t) * 1000)
    view.close()
""")


def draw(home: Path, elsewhere: Path) -> float:
    """Draw a first frame in a fresh process on ``home``; ms of that frame."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESA_SHADER_CACHE")}
    env.update(HOME=str(elsewhere), XDG_CACHE_HOME=str(elsewhere / ".cache"),
               VTK_DEFAULT_OPENGL_WINDOW="vtkOSOpenGLRenderWindow", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", DRAW, str(home)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=True)
    return float(done.stdout.split()[-1])


def cached_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def test_the_shaders_a_first_frame_compiles_are_kept_in_the_home_and_read_next_time(
        tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "user"
    elsewhere.mkdir()
    draw(home, elsewhere)
    folder = shader_cache_dir(home)
    first = cached_files(folder)
    assert first, "Mesa wrote no compiled shader into the home"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not cached_files(elsewhere), "Mesa's default cache was used instead"
    draw(home, elsewhere)
    assert cached_files(folder) == first  # the second process compiled nothing new


def test_a_cache_the_user_chose_is_left_alone(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(MESA_CACHE_DIR, str(tmp_path / "theirs"))
    assert use_shader_cache(tmp_path / "home") is None
    assert os.environ[MESA_CACHE_DIR] == str(tmp_path / "theirs")
    assert not shader_cache_dir(tmp_path / "home").exists()


def test_the_cache_folder_is_made_private(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(MESA_CACHE_DIR, raising=False)
    monkeypatch.delenv("MESA_SHADER_CACHE_DISABLE", raising=False)
    folder = shader_cache_dir(tmp_path)
    folder.mkdir(parents=True, mode=0o755)
    os.chmod(folder, 0o755)
    assert use_shader_cache(tmp_path) == folder
    assert os.environ[MESA_CACHE_DIR] == str(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
