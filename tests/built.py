"""Generated populations and their stored facts, kept on disk for `make mutation` only.

Building them (generating the cases, folding them, storing them in SQLite, loading the facts)
takes a minute and more per mutant under mutmut's trampolines, and none of it reads
services/reporting/evaluation.py. So a mutant of the evaluation reads what the clean run
(mutmut's `MUTANT_UNDER_TEST` empty, or `stats`: the original code) built and pickled, keyed by
the name, the arguments and the source of everything else it is made from. A mutant of any
other module, and every ordinary test run, builds afresh."""

import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".built"


def _key(name: str, args: tuple) -> str:
    digest = hashlib.sha256(repr((name, args)).encode())
    sources = [*ROOT.glob("shared/**/*.py"), *ROOT.glob("shared/**/*.yaml"),
               *ROOT.glob("services/reporting/*.py"), *ROOT.glob("tests/**/*.py")]
    for path in sorted(sources):
        if path.name != "evaluation.py":
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def built(name: str, args: tuple, build: Callable[[], T]) -> T:
    """build(), or for a mutant of the evaluation what the clean run's build() gave."""
    mutant = os.environ.get("MUTANT_UNDER_TEST")
    if mutant is None:
        return build()
    path = CACHE / f"{name}-{_key(name, args)}.pickle"
    if mutant.startswith("services.reporting.evaluation.") and path.exists():
        return pickle.loads(path.read_bytes())
    value = build()
    if mutant in ("", "stats"):
        CACHE.mkdir(exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}")
        tmp.write_bytes(pickle.dumps(value))
        tmp.replace(path)
    return value
