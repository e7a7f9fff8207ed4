"""``python -m bench``: the benchmark (``--help`` lists the flags)."""

import sys

from bench.cli import main

sys.exit(main())
