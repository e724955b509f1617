"""The table-position offset between two studies is remembered per pair, in the home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.workflow import table_offsets
from app.workflow.table_offsets import FILE, load_offset, save_offset


def test_an_offset_is_kept_per_pair_either_way_round(tmp_path: Path) -> None:
    assert load_offset(tmp_path, "1.2.3", "1.2.4") is None
    save_offset(tmp_path, "1.2.4", "1.2.3", 12.5)  # 1.2.3 lies 12.5 mm further than 1.2.4
    assert load_offset(tmp_path, "1.2.4", "1.2.3") == pytest.approx(12.5)
    assert load_offset(tmp_path, "1.2.3", "1.2.4") == pytest.approx(-12.5)
    save_offset(tmp_path, "1.2.3", "1.2.4", 3.0)  # set again from the other side
    assert load_offset(tmp_path, "1.2.4", "1.2.3") == pytest.approx(-3.0)
    save_offset(tmp_path, "1.2.3", "1.2.9", -7.25)
    assert load_offset(tmp_path, "1.2.9", "1.2.3") == pytest.approx(7.25)
    assert load_offset(tmp_path, "1.2.3", "1.2.3") is None
    raw = json.loads((tmp_path / FILE).read_text())
    assert raw["schema"] == 1 and len(raw["pairs"]) == 2
    assert not (tmp_path / "settings.json").exists()


def test_only_the_last_pairs_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table_offsets, "MAX_PAIRS", 3)
    for n in range(5):
        save_offset(tmp_path, "1.1", f"1.2.{n}", float(n))
    assert [load_offset(tmp_path, "1.1", f"1.2.{n}") for n in range(5)] == [
        None, None, 2.0, 3.0, 4.0]
    save_offset(tmp_path, "1.1", "1.2.2", 9.0)  # set again: the newest
    save_offset(tmp_path, "1.1", "1.2.7", 1.0)
    assert load_offset(tmp_path, "1.1", "1.2.2") == 9.0
    assert load_offset(tmp_path, "1.1", "1.2.3") is None


@pytest.mark.parametrize("text", ["{not json", "[]", '{"pairs": 3}', '{"pairs": {"a|b": "x"}}'])
def test_a_damaged_file_is_named_and_starts_again(tmp_path: Path, text: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / FILE).write_text(text)
    assert load_offset(tmp_path, "a", "b") is None
    if text.startswith('{"pairs": {'):
        return  # a bad value is left out quietly, the others are used
    assert FILE in caplog.text
    save_offset(tmp_path, "a", "b", 1.0)
    assert load_offset(tmp_path, "a", "b") == 1.0
