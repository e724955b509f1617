"""DIMSE (classic DICOM networking, pynetdicom): Relay as a client of PACS and modalities, and
Relay's own DICOM node. Every association is made through :mod:`app.net.dimse.association`."""
