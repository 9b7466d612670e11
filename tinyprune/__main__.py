"""``python -m tinyprune`` is the ``tinyprune`` command."""

import sys

from .cli import main

sys.exit(main())
