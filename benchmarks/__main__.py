"""`python -m benchmarks [--quick] [--only redis|sqlite|cluster] [--json FILE]`."""

import sys

from benchmarks.bench import main

sys.exit(main())
