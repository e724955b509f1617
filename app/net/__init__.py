"""Exchange: DICOMweb (QIDO/WADO/STOW) and DIMSE, hub profiles, credentials."""
