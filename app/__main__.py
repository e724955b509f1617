"""``python -m app`` is the ``relay`` command."""

from app.cli.main import main

raise SystemExit(main())
