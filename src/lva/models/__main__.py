"""``python -m lva.models list|install|convert`` (see :mod:`lva.models.cli`)."""

from .cli import main

raise SystemExit(main())
