"""The vendored packages (services/web/vendor.py): the design system and axe-core (the browser
tests' accessibility check). The committed files are exactly those recorded, with the recorded
digests, and every file the stylesheet refers to is among them, so the pages load nothing from
elsewhere."""

import hashlib
import json

from services.web.vendor import AXE_CORE, DKFDS, RECORD, STYLESHEET, VENDOR, referenced


def test_the_committed_files_are_those_recorded_with_their_digests():
    dkfds, axe = json.loads(RECORD.read_text())
    assert (dkfds["name"], dkfds["version"], axe["name"], axe["version"]) == ("dkfds", DKFDS, "axe-core", AXE_CORE)
    assert "MIT" in dkfds["license"] and "OFL-1.1" in dkfds["license"] and axe["license"] == "MPL-2.0"
    for package in (dkfds, axe):
        assert package["integrity"].startswith("sha512-")
        on_disk = {p.relative_to(VENDOR).as_posix() for p in (VENDOR / package["name"]).rglob("*") if p.is_file()}
        assert on_disk == set(package["files"]), package["name"]
        for path, digest in package["files"].items():
            assert hashlib.sha256((VENDOR / path).read_bytes()).hexdigest() == digest, path
    assert set(axe["files"]) == {"axe-core/axe.min.js", "axe-core/LICENSE"}


def test_every_file_the_stylesheet_refers_to_is_vendored():
    css = (VENDOR / "dkfds" / "css" / "dkfds.min.css").read_text()
    wanted = referenced(STYLESHEET, css)
    assert len(wanted) > 100  # fonts and icons
    for path in wanted:
        assert (VENDOR / "dkfds" / path.removeprefix("dist/")).is_file(), path


def test_references_resolve_against_the_stylesheet_and_skip_data_urls():
    css = 'a{background:url("../img/a.svg?x#y")} b{src:url(../fonts/f.woff2)} c{background:url(data:image/png;base64,AA==)}'
    assert referenced("dist/css/x.css", css) == ["dist/fonts/f.woff2", "dist/img/a.svg"]
