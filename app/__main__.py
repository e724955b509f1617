"""``python -m app`` is the ``relay`` command."""

from app.cli import main

raise SystemExit(main())
