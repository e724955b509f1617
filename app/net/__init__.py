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
- ``dimse``     DIMSE with a PACS (pynetdicom): ``peer`` (the PACS as a :class:`peer.Peer`,
                profile kind ``dimse``), ``association`` (the one way associations are made),
                ``client`` (C-ECHO, C-FIND, C-STORE, commitment, C-GET/C-MOVE), ``routes``
                (what a PACS sends back to Relay's node, handed to the job that asked),
                ``pacs``, ``query``; and Relay's own node (``listener``, ``receive``,
                ``find_scp``, ``retrieve_scp``). The ``relay pacs``, ``query``, ``retrieve``,
                ``send --pacs`` and ``listen`` commands are in :mod:`app.cli.pacs` and
                :mod:`app.cli.node`

The commands (``relay hub|send|fetch|queue|dev-hub``) are in :mod:`app.cli.net`.

The seam: every profile in ``settings.hubs`` is a peer (``kind`` ``dicomweb`` or ``dimse``, made
by :data:`hubs.PEER_KINDS`), and the queue runner's ``send``/``fetch`` jobs, remote reading and
``relay hub test``/``pacs test`` speak only :class:`peer.Peer`. A PACS send is a ``send`` job and
a PACS retrieve a ``fetch`` job (its ``method``: C-GET or C-MOVE); the incoming list polls the
DICOMweb hubs only (a PACS is searched from the Query/Retrieve dialog).

No Qt here: the UI subscribes to :class:`app.tasks.Progress` and to listeners, on its own thread.
"""
