"""Issue 18: the README and the documents beside it link only to what a clone has."""

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "deploy").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_relative_links_resolve_inside_the_repository():
    checked = 0
    for document in DOCUMENTS:
        for target in LINK.findall(document.read_text()):
            if re.match(r"[a-z]+:|#", target):
                continue  # a web address or an anchor in the same page
            path = (document.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(ROOT) and path.exists(), f"{document.name}: {target}"
            checked += 1
    assert checked >= 3  # README -> docs/API.md, docs/mutation.md; docs/API.md -> trials.md


def test_no_document_points_out_of_the_repository():
    for document in DOCUMENTS:
        assert not re.search(r"`\.\./|\]\(\.\./|/work/", document.read_text()), document.name


def test_the_integration_contract_is_in_the_repository():
    assert "[docs/API.md](docs/API.md)" in (ROOT / "README.md").read_text()
    assert (ROOT / "docs" / "API.md").read_text().startswith("# Integration contract")
