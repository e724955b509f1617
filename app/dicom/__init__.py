"""Reading DICOM: headers (fast and pydicom paths), data elements, pixels and codecs, and the
synthetic series generator."""
