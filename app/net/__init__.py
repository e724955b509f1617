"""Exchange with hubs, in layers (each a module; read top-down to learn the path of a study).

- ``runner``    the transfer queue worked in the background (the window's queue panel); it
                drives every job through one :class:`peer.Mover` interface (``MOVERS``)
- ``send``      a send job: store batches, two in flight, verified by search ("N of N
                verified"), resumable
- ``fetch``     a fetch job, the slice in view first (:class:`fetch.Download`)
- ``remote``, ``metadata``, ``preview``  a study read while it downloads
- ``incoming``, ``watch``  new studies on the hubs, local or not
- ``status``    a job in plain words (state, speed, ETA)
- ``retry``     the one retry loop of a job: backoff while a hub is away
- ``queue``     the durable job and per-instance state (SQLite)
- ``part_ingest``  received instances into the local store (the import path)
- ``peer``      **the seam**: :class:`peer.Peer`, the operations every remote speaks (search
                studies/series/instances, store, retrieve, which instances are present,
                metadata), with results in the DICOM JSON model and searches as iterators
- ``hubs``      profile -> peer (``PEER_KINDS``: a profile's ``kind`` -> its client module),
                ``relay hub test``
- ``dicomweb``  the DICOMweb peer: QIDO-RS / STOW-RS / WADO-RS requests and answers
- ``multipart`` multipart/related bodies, streamed both ways
- ``http``      TLS, authentication, timeouts, faults in plain words
- ``secrets``, ``cryptfile``  the secrets of profiles (keyring, or an encrypted file)
- ``devhub``    a local Orthanc hub (tests, ``relay dev-hub``)
- ``dimse``     DIMSE (pynetdicom): so far only :mod:`dimse.association`, the one way
                associations are made (timeouts, TLS, faults as :class:`~app.errors.DimseError`);
                no DIMSE peer yet

The commands (``relay hub|send|fetch|queue|dev-hub``) are in :mod:`app.cli.net`.

DICOMweb is the one protocol of the transfers today. Adding another (DIMSE next) touches no
transfer code:

1. one client module, say ``app/net/dimse/peer.py`` (associations through
   :mod:`dimse.association`): a class with every :class:`peer.Peer` method
   (``where``, ``check`` = C-ECHO, ``studies``/``series``/``instances`` = C-FIND at STUDY/
   SERIES/IMAGE level yielding ``Dataset.to_json_dict()`` one response at a time with
   ``limit``/``offset`` applied as it iterates, ``study_instance_count``/``present``/
   ``instance_uids`` from C-FIND, ``store`` = C-STORE per file into a
   :class:`peer.StoreResult`, ``retrieve`` = C-GET (or C-MOVE to our own SCP) writing each
   received dataset through ``open_part``/``close_part``, ``metadata`` from an IMAGE-level
   C-FIND or :class:`~app.errors.NotSupportedByPeer`); faults raised as
   :class:`~app.errors.DimseError` (a :class:`~app.errors.HubError`, whose ``retryable`` kinds
   :mod:`retry` waits out); and a ``connect(profile, secret, *, pool_size)``;
2. one profile kind: ``"dimse"`` in :data:`app.settings.PROFILE_KINDS`, the DIMSE fields of
   :class:`app.settings.HubProfile` (host, port, called and calling AE titles; a schema bump
   with its migration), and ``"dimse": dimse.connect`` in :data:`hubs.PEER_KINDS`; plus the
   ``relay hub add`` options and the hub dialog's fields for them.

No Qt here: the UI subscribes to :class:`app.tasks.Progress` and to listeners, on its own thread.
"""
