"""MP4 movies: written with PyAV, decoded back to the same pictures (within H.264's loss)."""

from __future__ import annotations

import numpy as np
import pytest

from app.render.movie import read_mp4, write_mp4


def _frames(n: int, rows: int = 120, cols: int = 161) -> list[np.ndarray]:
    out = []
    for k in range(n):
        frame = np.zeros((rows, cols, 3), dtype=np.uint8)
        frame[20:60, 10 + 4 * k:50 + 4 * k] = (230, 230, 230)  # a square moving right
        frame[80:100, :, 0] = 180
        out.append(frame)
    return out


def test_movie_decodes_back_to_the_frames(tmp_path):
    frames = _frames(12)
    path = tmp_path / "cine.mp4"
    assert write_mp4(iter(frames), path, fps=8) == 12
    assert path.read_bytes()[4:8] == b"ftyp" and not (tmp_path / "cine.mp4.part").exists()
    back = read_mp4(path)
    assert len(back) == 12
    assert back[0].shape == (120, 162, 3)  # odd width padded to even
    for original, decoded in zip(frames, back, strict=True):
        assert np.abs(decoded[:, :161].astype(int) - original).mean() < 3
    # the square moved: frames differ where it went
    assert back[0][40, 12].mean() > 200 and back[11][40, 12].mean() < 40


def test_bad_frames_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no frame"):
        write_mp4([], tmp_path / "empty.mp4")
    with pytest.raises(ValueError, match="frame 2"):
        write_mp4([np.zeros((10, 10, 3), np.uint8), np.zeros((12, 10, 3), np.uint8)],
                  tmp_path / "sizes.mp4")
    with pytest.raises(ValueError, match="uint8"):
        write_mp4([np.zeros((10, 10), np.uint8)], tmp_path / "grey.mp4")


def test_writer_on_a_thread_takes_frames_one_by_one(tmp_path):
    from app.render.movie import MovieWriter

    writer = MovieWriter(tmp_path / "fed.mp4", fps=5, backlog=2)
    for frame in _frames(9):
        writer.put(frame)
    assert writer.close() == 9
    assert len(read_mp4(tmp_path / "fed.mp4")) == 9
    bad = MovieWriter(tmp_path / "bad.mp4")
    bad.put(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        bad.close()
    assert not (tmp_path / "bad.mp4").exists() and not (tmp_path / "bad.mp4.part").exists()
