"""`make bench`: the benches behind the README's figures, one after another, each in its own
process with the arguments the figures were measured with (docs/performance.md).

Each prints its own ratios to the reference and to the floor; this only runs them and says which
failed. Run them on a quiet machine: on a shared one the ratios move. About 7 minutes.
"""

from __future__ import annotations

import subprocess
import sys
import time

# (module, arguments): the README's "Measured" table, in its order.
HEADLINE = [
    ("bench.bench_incremental", []),
    ("bench.bench_qflux_1024", ["--lora-mb", "300", "--links", "loopback"]),
    ("bench.bench_overhead", ["--noop", "--lora-mb", "300", "--noop-samples", "200", "--repeats", "5"]),
    ("bench.bench_xet", []),
]


def main() -> int:
    failed = []
    for module, args in HEADLINE:
        print(f"\n=== python -m {module} {' '.join(args)}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", module, *args])
        print(f"=== {module}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(module)
    if failed:
        print(f"\n{len(failed)} bench(es) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
