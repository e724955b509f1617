"""Short H.264 MP4 movies of pictures (a cine loop, a rotating 3D view) for a consult note.

Frames are ``(rows, cols, 3)`` uint8 RGB, all of one size. Written through PyAV (FFmpeg's
libraries): H.264 in yuv420p, the format every browser, phone and office program plays; odd
sizes are padded by one black row or column (yuv420p needs even sizes).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

log = logging.getLogger(__name__)

#: Constant rate factor of libx264: 18 looks the same as the screen (lower: bigger files).
QUALITY_CRF = 18


def write_mp4(frames: Iterable[np.ndarray], path: Path | str, *, fps: float = 10.0) -> int:
    """Write ``frames`` to ``path`` as an MP4 at ``fps`` frames per second; returns the number
    of frames written.

    Raises
    ------
    ValueError
        No frame, a frame that is not RGB uint8, or frames of different sizes.
    """
    if not 0 < fps <= 120:
        raise ValueError(f"fps must be in (0, 120], got {fps}")
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    try:
        count = _write(frames, tmp, fps)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    log.info("movie written: %d frames at %g frames/s", count, fps)
    return count


def _write(frames: Iterable[np.ndarray], tmp: Path, fps: float) -> int:
    count = 0
    size: tuple[int, int] | None = None
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = None
        for frame in frames:
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise ValueError(f"frames must be (rows, cols, 3) uint8, got {frame.shape} "
                                 f"{frame.dtype}")
            if size is None:
                size = frame.shape[:2]
                stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
                stream.width, stream.height = (_even(size[1]), _even(size[0]))
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(QUALITY_CRF)}
            elif frame.shape[:2] != size:
                raise ValueError(f"frame {count + 1} is {frame.shape[1]}×{frame.shape[0]}, "
                                 f"the first was {size[1]}×{size[0]}")
            assert stream is not None
            video = av.VideoFrame.from_ndarray(_padded(frame), format="rgb24")
            container.mux(stream.encode(video))
            count += 1
        if stream is None:
            raise ValueError("no frame to write")
        container.mux(stream.encode(None))  # flush
    return count


class MovieWriter:
    """:func:`write_mp4` on a background thread, fed one frame at a time (:meth:`put`), so a
    GUI can make frames between its events while the encoder works; at most ``backlog``
    frames wait in memory."""

    def __init__(self, path: Path | str, *, fps: float = 10.0, backlog: int = 8) -> None:
        self.path = Path(path)
        self.fps = fps
        self._frames: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=backlog)
        self._result: int | BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="movie", daemon=True)
        self._thread.start()

    def put(self, frame: np.ndarray) -> None:
        """Add a frame (waits while ``backlog`` frames are still being encoded)."""
        if not self._thread.is_alive():
            self.close()  # raises what stopped the encoder
        self._frames.put(frame)

    def close(self, timeout: float = 120.0) -> int:
        """No more frames: finish the file; returns the number of frames written."""
        if self._thread.is_alive():
            self._frames.put(None)
            self._thread.join(timeout)
        if isinstance(self._result, BaseException):
            raise self._result
        return int(self._result or 0)

    def _iterate(self) -> Iterator[np.ndarray]:
        while (frame := self._frames.get()) is not None:
            yield frame

    def _run(self) -> None:
        try:
            self._result = write_mp4(self._iterate(), self.path, fps=self.fps)
        except BaseException as exc:  # handed to the caller by close()
            self._result = exc
            while True:  # unblock a producer waiting on a full queue
                try:
                    self._frames.get_nowait()
                except queue.Empty:
                    break


def read_mp4(path: Path | str) -> list[np.ndarray]:
    """Every frame of a movie as ``(rows, cols, 3)`` uint8 RGB (tests, previews)."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _even(n: int) -> int:
    return n + (n % 2)


def _padded(frame: np.ndarray) -> np.ndarray:
    rows, cols = frame.shape[:2]
    if rows % 2 == 0 and cols % 2 == 0:
        return np.ascontiguousarray(frame)
    out = np.zeros((_even(rows), _even(cols), 3), dtype=np.uint8)
    out[:rows, :cols] = frame
    return out
