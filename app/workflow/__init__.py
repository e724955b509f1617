"""The technologist's work on stored studies: reconciliation, de-identification, PDI export,
and the append-only audit record they write. Qt-free."""
