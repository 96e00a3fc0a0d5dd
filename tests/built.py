"""Generated populations and their stored facts, built once and read by every test that needs
them.

Building one (generating the cases, folding them, storing them in SQLite, loading the facts)
takes seconds, 5 s for 6,000 cases; loading it pickled takes half a second.

- In a parallel test run (pytest-xdist), the first worker to ask builds it and pickles it into
  the run's temporary directory, under a lock; the other workers wait and load it. Each worker
  would otherwise build the same population for its share of a module's tests.
- Under `make mutation`, a mutant of services/reporting/evaluation.py reads what the clean run
  (mutmut's `MUTANT_UNDER_TEST` empty, or `stats`: the original code) built and pickled in
  `.built/`, keyed by the name, the arguments and the source of everything else it is made from:
  none of it reads evaluation.py, and under mutmut's trampolines a build takes a minute and more.
  A mutant of any other module builds afresh."""

import fcntl
import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

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


def _pickled(path: Path, value: T) -> T:
    tmp = path.with_suffix(f".{os.getpid()}")
    tmp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(path)
    return value


def built(name: str, args: tuple, build: Callable[[], T], tmp_path_factory: pytest.TempPathFactory) -> T:
    """build(), once per test run, or for a mutant of the evaluation what the clean run's build() gave."""
    mutant = os.environ.get("MUTANT_UNDER_TEST")
    if mutant is None:
        if "PYTEST_XDIST_WORKER" not in os.environ:
            return build()
        # the workers' temporary directories share this parent, one per run
        path = tmp_path_factory.getbasetemp().parent / f"built-{name}-{'-'.join(map(str, args))}.pickle"
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return pickle.loads(path.read_bytes()) if path.exists() else _pickled(path, build())
    path = CACHE / f"{name}-{_key(name, args)}.pickle"
    if mutant.startswith("services.reporting.evaluation.") and path.exists():
        return pickle.loads(path.read_bytes())
    value = build()
    if mutant in ("", "stats"):
        CACHE.mkdir(exist_ok=True)
        _pickled(path, value)
    return value
