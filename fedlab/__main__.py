"""Run the command line: ``python -m fedlab run --help``."""

from fedlab.cli import main

raise SystemExit(main())
