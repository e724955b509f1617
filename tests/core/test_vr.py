"""Values as their VR allows them (PS3.5 6.2): the one valid reading, or None."""

from __future__ import annotations

import pytest

from app.dicom.vr import conform


@pytest.mark.parametrize(("vr", "value", "expected"), [
    ("DA", "19961029", "19961029"),
    ("DA", "1996.10.29", "19961029"),  # ACR-NEMA (before 1993)
    ("DA", "1996-10-29", "19961029"),
    ("DA", "1996/1/9", "19960109"),
    ("DA", "19961329", None),  # no 13th month
    ("DA", "1996.02.30", None),
    ("DA", "29.10.1996", None),  # day first or month first: no one reading
    ("DA", "unknown", None),
    ("DA", "  ", ""),
    ("TM", "151859", "151859"),
    ("TM", "151859.123456", "151859.123456"),
    ("TM", "15:18:59", "151859"),
    ("TM", "9:05", "0905"),
    ("TM", "15:18:59.5", "151859.5"),
    ("TM", "25:00:00", None),
    ("TM", "1518599", None),
    ("IS", " 7 ", "7"),
    ("IS", "+12", "12"),
    ("IS", "12.5", None),
    ("IS", "3000000000", None),
    ("CS", "ct", "CT"),
    ("CS", "C-T", None),
    ("SH", "d6e895774587360288a394441a225639", None),  # 32 > 16
    ("SH", "1234", "1234"),
    ("LO", "MRN 0042 ", "MRN 0042"),
    ("LO", "x" * 65, None),
    ("PN", "MULLER^ANNA^M", "MULLER^ANNA^M"),
    ("PN", "A^B^C^D^E^F", None),
    ("UI", "1.2.3", "1.2.3"),  # not handled here: as it is
])
def test_a_value_conforms_to_its_vr_or_is_refused(vr, value, expected):
    assert conform(vr, value) == expected
