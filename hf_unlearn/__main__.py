"""``python -m hf_unlearn ...``: the same as the ``hf-unlearn`` console script."""

import sys

from .cli.commands import main

sys.exit(main())
