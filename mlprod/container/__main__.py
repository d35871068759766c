"""``python -m mlprod.container``: see :func:`mlprod.container.cli.main`."""

from mlprod.container.cli import main

raise SystemExit(main())
