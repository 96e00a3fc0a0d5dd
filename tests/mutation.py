"""`make mutation`'s score: after `mutmut run`, the mutants killed per module, the survivors
with their diffs, and a failure when fewer than 90 % are killed or a survivor is not listed. A
survivor named in docs/mutation.md (equivalent: no test can tell it from the original) is left
out of the count.

    python -m tests.mutation            # score, survivors not listed as equivalent, with diffs
    python -m tests.mutation --names    # the same, names only
    python -m tests.mutation save       # mutants/'s verdicts into tests/mutation_results/ (to commit)
    python -m tests.mutation restore    # and back, where mutants/ has none

A full run takes hours on two cores, more than a working session: the verdicts are kept in git
(tests/mutation_results/, per module which mutants were killed and the hash of each function
as mutmut saw it), so that the next run tries only the mutants not tried yet and those of
functions that changed since (mutmut compares the hashes when it makes the mutants again).
The score fails while any mutant is not tried: a part is not the whole.
"""

import json
import re
import sys
from collections import Counter
from pathlib import Path

from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

TARGET = 0.90
KILLED = {"killed", "timeout", "caught by type check"}  # a timeout is a test noticing the change
# mutmut files a worker whose test run raised (e.g. pytest could not find a test by its id: exit
# 4) under exit code 255, which it calls a timeout; no test ran, so it is not a kill
HARNESS_ERROR = 255
EQUIVALENTS = Path(__file__).resolve().parents[1] / "docs" / "mutation.md"
RESULTS = Path(__file__).resolve().parent / "mutation_results"


def equivalent() -> set[str]:
    """The mutants named (`module.x_function__mutmut_N`) under docs/mutation.md's heading
    "Equivalent mutants"."""
    text = EQUIVALENTS.read_text(encoding="utf-8").partition("## Equivalent mutants")[2].partition("\n## ")[0]
    return set(re.findall(r"`([\w.ǁ]+__mutmut_\d+)`", text))


def main(names_only: bool) -> int:
    listed = equivalent()
    total_killed = total_counted = 0
    survivors: list[tuple[str, str, Path]] = []
    print(f"{'module':40} {'killed':>7} {'of':>6} {'score':>7}  equivalent  not checked")
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        statuses = {name: "harness error" if code == HARNESS_ERROR else status_by_exit_code[code]
                    for name, code in data.exit_code_by_key.items()}
        counts = Counter(statuses.values())
        unchecked = counts["not checked"]
        equivalents = [n for n, s in statuses.items() if s not in KILLED and s != "not checked" and n in listed]
        counted = len(statuses) - unchecked - len(equivalents)
        killed = sum(counts[s] for s in KILLED)
        total_killed, total_counted = total_killed + killed, total_counted + counted
        score = killed / counted if counted else 1.0
        print(f"{str(path):40} {killed:7} {counted:6} {score:7.1%}  {len(equivalents):10}  {unchecked:11}")
        survivors += [(n, s, path) for n, s in statuses.items()
                      if s not in KILLED and s != "not checked" and n not in listed]
    score = total_killed / total_counted if total_counted else 1.0
    print(f"{'all':40} {total_killed:7} {total_counted:6} {score:7.1%}")
    print(f"\n{len(survivors)} mutants not killed and not listed as equivalent in docs/mutation.md:")
    for name, status, path in survivors:
        print(f"\n# {name}: {status}" if not names_only else f"  {name}: {status}")
        if not names_only:
            print(get_diff_for_mutant(name, path=path))
    untried = sum(1 for path in walk_mutatable_files() for code in _codes(path) if code is None)
    if untried:
        print(f"\nincomplete: {untried} mutants not tried yet; the score counts only those tried")
    if score < TARGET:
        print(f"\nmutation score {score:.1%} is below {TARGET:.0%}")
    return 1 if untried or survivors or score < TARGET else 0  # every survivor killed or listed


def _codes(path: Path) -> list[int | None]:
    data = SourceFileMutationData(path=path)
    data.load()
    return list(data.exit_code_by_key.values())


def save() -> None:
    """Each module's verdicts and function hashes, without mutmut's timings (they change every run)."""
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        kept = {"exit_code_by_key": dict(sorted(data.exit_code_by_key.items())),
                "hash_by_function_name": dict(sorted(data.hash_by_function_name.items())),
                "type_check_error_by_key": {}, "durations_by_key": {}, "estimated_durations_by_key": {}}
        target = RESULTS / (str(path) + ".meta")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(kept, indent=0) + "\n", encoding="utf-8")


def restore() -> None:
    for kept in RESULTS.rglob("*.meta"):
        target = Path("mutants") / kept.relative_to(RESULTS)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(kept.read_text(encoding="utf-8"), encoding="utf-8")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "save":
        save()
    elif command == "restore":
        restore()
    else:
        sys.exit(main("--names" in sys.argv[1:]))
