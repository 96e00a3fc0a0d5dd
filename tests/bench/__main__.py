"""`make bench`: every benchmark, or the ones named (`python -m tests.bench obligations`)."""

import sys

from tests.bench import embedded, ingest, obligations, reporting

BENCHMARKS = {"ingest": ingest.main, "obligations": obligations.main, "reporting": reporting.main,
              "embedded": embedded.main}

if __name__ == "__main__":
    for name in sys.argv[1:] or BENCHMARKS:
        BENCHMARKS[name]()
