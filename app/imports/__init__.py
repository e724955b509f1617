"""Outside media into the local store: walking folders, DICOMDIR discs and zips, and importing."""
