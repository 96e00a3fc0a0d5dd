"""The vendored design system (services/web/vendor.py): the committed files are exactly those
recorded, with the recorded digests, and every file the stylesheet refers to is among them, so
the pages load nothing from elsewhere."""

import hashlib
import json

from services.web.vendor import RECORD, STYLESHEET, VENDOR, referenced


def test_the_committed_files_are_those_recorded_with_their_digests():
    (dkfds,) = json.loads(RECORD.read_text())
    assert (dkfds["name"], dkfds["integrity"].split("-")[0]) == ("dkfds", "sha512")
    assert "MIT" in dkfds["license"] and "OFL-1.1" in dkfds["license"]
    on_disk = {p.relative_to(VENDOR).as_posix() for p in (VENDOR / "dkfds").rglob("*") if p.is_file()}
    assert on_disk == set(dkfds["files"])
    for path, digest in dkfds["files"].items():
        assert hashlib.sha256((VENDOR / path).read_bytes()).hexdigest() == digest, path


def test_every_file_the_stylesheet_refers_to_is_vendored():
    css = (VENDOR / "dkfds" / "css" / "dkfds.min.css").read_text()
    wanted = referenced(STYLESHEET, css)
    assert len(wanted) > 100  # fonts and icons
    for path in wanted:
        assert (VENDOR / "dkfds" / path.removeprefix("dist/")).is_file(), path


def test_references_resolve_against_the_stylesheet_and_skip_data_urls():
    css = 'a{background:url("../img/a.svg?x#y")} b{src:url(../fonts/f.woff2)} c{background:url(data:image/png;base64,AA==)}'
    assert referenced("dist/css/x.css", css) == ["dist/fonts/f.woff2", "dist/img/a.svg"]
