"""The index keeps each image's ImageInfo as JSON: written without ``asdict``, read back equal."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from app.dicom.header import read_header
from app.model import ImageInfo


@pytest.mark.parametrize("folder", [
    "ct-head/ge-hispeed-human-gantry-tilt",
    "multiframe",
    "compressed",
    "mr-brain",
])
def test_image_info_json_is_what_asdict_gives_and_reads_back_equal(data: Path,
                                                                   folder: str) -> None:
    seen = 0
    for path in sorted((data / folder).rglob("*")):
        if not path.is_file() or path.suffix.lower() not in (".dcm", ""):
            continue
        try:
            info = read_header(path.read_bytes(), str(path)).instance.image
        except Exception:  # not an image file, or malformed: other tests cover those
            continue
        if info is None:
            continue
        text = info.to_json()
        assert json.loads(text) == json.loads(json.dumps(asdict(info))), path
        assert ImageInfo.from_json(text) == info, path
        seen += 1
    assert seen > 0
