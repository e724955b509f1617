"""What a SOP class is, in the words a report uses for one file of it."""

from __future__ import annotations

from pydicom.uid import UID


def object_noun(sop_class_uid: str) -> str:
    """``"image"`` (CT, MR, secondary capture, ...), ``"document"`` (a structured report, an
    encapsulated PDF or CDA), ``"object"`` (any other standard object: a key object
    selection, a presentation state, a segmentation) or ``"file"`` (unknown or not said)."""
    uid = UID(sop_class_uid or "")
    if not sop_class_uid or uid.type != "SOP Class":
        return "file"
    name = uid.name
    if "Image Storage" in name:
        return "image"
    if name.startswith("Key Object Selection"):
        return "object"  # a "document" by its name, but a list of key images to a reader
    if "SR Storage" in name or name.startswith("Encapsulated"):
        return "document"
    return "object"
