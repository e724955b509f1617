"""Exchange with hubs, in layers (each a module; read top-down to learn the path of a study).

- ``commands``  ``relay hub|send|fetch|queue|dev-hub``
- ``runner``    the transfer queue worked in the background (the window's queue panel)
- ``send``      STOW-RS batches, two in flight, QIDO-verified ("N of N verified"), resumable
- ``fetch``     WADO-RS download, the slice in view first (:class:`fetch.Download`)
- ``incoming``  new studies on the hub, local or not
- ``queue``     the durable job and per-instance state (SQLite)
- ``ingest``    downloaded parts into the local store (the import path)
- ``dicomweb``  QIDO / STOW / WADO requests and answers
- ``multipart`` multipart/related bodies, streamed both ways
- ``http``      TLS, authentication, timeouts, faults in plain words
- ``hubs``, ``secrets``, ``cryptfile``  profiles and their secrets
- ``devhub``    a local Orthanc hub (tests, ``relay dev-hub``)

No Qt here: the UI subscribes to :class:`app.tasks.Progress` and to listeners, on its own thread.
"""
