"""`python -m benchmarks [--quick] [--only redis|sqlite|cluster|startup|scale] [--json FILE]`."""

import sys

from benchmarks.bench import main

sys.exit(main())
