"""`python -m politely` is the `politely` command."""

import sys

from politely.cli import main

sys.exit(main())
