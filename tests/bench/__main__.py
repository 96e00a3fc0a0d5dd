"""`make bench`: every benchmark, or the ones named (`python -m tests.bench obligations`)."""

import sys

from tests.bench import embedded, ingest, obligations, reporting, whatif

BENCHMARKS = {"ingest": ingest.main, "obligations": obligations.main, "reporting": reporting.main,
              "whatif": whatif.main, "embedded": embedded.main}

if __name__ == "__main__":
    names = sys.argv[1:] or list(BENCHMARKS)
    for name in names:
        if name == "reporting" and "whatif" in names:
            reporting.main(then=whatif.measure)  # the what-if scenarios on the store it built
        elif not (name == "whatif" and "reporting" in names):
            BENCHMARKS[name]()
