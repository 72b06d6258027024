"""``python -m bench [options]``: the event log benchmark (``python -m bench.log --help``)."""

from bench.log import main

raise SystemExit(main())
