"""`python -m perfsuite.cli ...` (what torchrun launches for `shard`): the same as `perfsuite ...`."""

import sys

from perfsuite.cli import main

sys.exit(main())
