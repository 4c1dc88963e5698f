"""`make bench`: the benchmarks of the whole product on this machine (run as `python -m bench.run`).

The e2e harness (e2e/system.py) already starts the sandbox and both services as real processes with fresh
databases and queues of their own; the bench imports it from there instead of keeping a copy.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "e2e") not in sys.path:
    sys.path.insert(0, str(ROOT / "e2e"))
