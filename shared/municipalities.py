"""The 98 Danish municipalities (kommuner), keyed by their 3-digit kommunekode."""

import csv
from functools import cache
from importlib.resources import files


@cache
def municipalities() -> dict[str, str]:
    """kommunekode -> name, e.g. "851" -> "Aalborg"."""
    with files("shared").joinpath("data/municipalities.csv").open(encoding="utf-8") as f:
        return {row["code"]: row["name"] for row in csv.DictReader(f)}
