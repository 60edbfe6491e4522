"""`python -m perfsuite ...`: the same command line as `perfsuite ...`."""

import sys

from perfsuite.cli import main

sys.exit(main())
