"""Benchmarks: each script prints its figures (none are asserted in tests).

Prefect's server telemetry heartbeat races the SQLite database of the servers the benches start
and logs "database is locked" tracebacks; hubpress never needs it.
"""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
