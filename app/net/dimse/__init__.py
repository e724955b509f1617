"""DIMSE exchange (pynetdicom): the PACS client and Relay's own DICOM node."""
