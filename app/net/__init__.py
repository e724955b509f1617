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
- ``dimse``     DIMSE with a PACS (pynetdicom): ``association`` (the one way associations are
                made), ``client`` (C-ECHO, C-FIND, C-STORE, commitment, C-GET/C-MOVE),
                ``pacs`` (PACS profiles), ``query``, ``send`` and ``retrieve`` (queue jobs
                ``pacs-send``/``pacs-retrieve``, through :mod:`retry`); the ``relay pacs``,
                ``query``, ``retrieve`` and ``send --pacs`` commands. Not yet a :class:`peer.Peer`

The commands (``relay hub|send|fetch|queue|dev-hub``) are in :mod:`app.cli.net`.

The seam today: hub profiles (``settings.hubs``, ``kind`` ``dicomweb``) are peers, and the queue
runner's ``send``/``fetch`` jobs, the incoming list and remote reading speak only
:class:`peer.Peer`. The DIMSE work was built beside it at the same time (its own
``settings.pacs`` profiles, jobs and commands). Putting DIMSE behind the seam, so that every
transfer, the incoming list and remote reading work with a PACS too, needs:

1. one client module, ``app/net/dimse/peer.py``: a class over :class:`dimse.client.DimseClient`
   with every :class:`peer.Peer` method (``where``; ``check`` = C-ECHO;
   ``studies``/``series``/``instances`` = C-FIND at STUDY/SERIES/IMAGE level yielding
   ``Dataset.to_json_dict()`` one response at a time, ``limit``/``offset`` applied as it
   iterates and the C-FIND cancelled at ``limit``; ``study_instance_count``/``present``/
   ``instance_uids`` from C-FIND; ``store`` = C-STORE of each file into a
   :class:`peer.StoreResult`; ``retrieve`` = C-GET writing each received dataset through
   ``open_part``/``close_part``; ``metadata`` = :class:`~app.errors.NotSupportedByPeer` or
   an IMAGE-level C-FIND of the plan's attributes), its faults as
   :class:`~app.errors.DimseError` (a :class:`~app.errors.HubError`, whose ``retryable`` kinds
   :mod:`retry` waits out), and a ``connect(profile, secret, *, pool_size)``;
2. one profile kind: ``"dimse"`` in :data:`app.settings.PROFILE_KINDS` with the DIMSE fields
   (host, port, called AE title, TLS files) on the profile, a schema bump migrating
   ``settings.pacs`` entries into ``settings.hubs``, and ``"dimse": dimse.peer.connect`` in
   :data:`hubs.PEER_KINDS`; the ``pacs-send``/``pacs-retrieve`` jobs then become ``send``/
   ``fetch`` jobs of that peer.

No Qt here: the UI subscribes to :class:`app.tasks.Progress` and to listeners, on its own thread.
"""
