"""``python -m collector.cli``: the same as the ``consentry`` command."""

import sys

from collector.cli import main

sys.exit(main())
