"""`python -m stagegraph new DIR`, the same as the `stagegraph` console script."""

from stagegraph.cli import main

raise SystemExit(main())
