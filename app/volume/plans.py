"""Series plans from the index, cached per process.

Planning a series (reading its rows from the index and sorting the slices along the normal) takes
~7 ms for 400 slices in a fresh process (``bench/bench_load.py``; more on a busy machine). The
browser's thumbnails plan every visible series in the
background, so when the user opens one the plan is usually already here and the first image
comes sooner. A cached plan is used only while the series has the same instances (count and
latest addition), so a series still arriving is planned again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from app.store.local import Store
from app.volume.stack import SeriesPlan, plan_series

_MAX = 64
_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str], tuple[tuple[int, float], SeriesPlan]] = OrderedDict()


def cached_plan(store: Store, series_uid: str) -> SeriesPlan | None:
    """The plan of ``series_uid`` if one is cached and still valid, else None (no planning)."""
    version = store.series_version(series_uid)
    with _lock:
        hit = _cache.get((str(store.home), series_uid))
    return hit[1] if hit is not None and hit[0] == version else None


def series_plan(store: Store, series_uid: str, frame_of_reference_uid: str = "") -> SeriesPlan:
    """The plan of ``series_uid`` (stacks + geometry issues), from the cache when still valid."""
    key = (str(store.home), series_uid)
    version = store.series_version(series_uid)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == version:
            _cache.move_to_end(key)
            return hit[1]
    plan = plan_series(store.image_rows(series_uid), frame_of_reference_uid)
    with _lock:
        _cache[key] = (version, plan)
        _cache.move_to_end(key)
        while len(_cache) > _MAX:
            _cache.popitem(last=False)
    return plan
