"""Vendor the web pages' third-party assets (Det Fælles Designsystem) and the browser tests'
accessibility checker (axe-core): `python -m services.web.vendor` fetches each pinned
npm package's tarball from the registry, checks it against the sha512 integrity the registry
publishes, and extracts only what the pages load into `static/vendor/<name>/`, recording name,
version, licence, integrity and each file's sha256 in `static/vendor/VENDORED.json`.

Run by a developer when a pin changes, never at run time or install time: the files are committed,
so users need neither npm nor the internet. Kept beside the web service, the only user of the
assets, so the pins sit next to what they produce (tests/unit/test_web_vendor.py checks the
committed files against the record)."""

import base64
import hashlib
import io
import json
import posixpath
import re
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"
VENDOR = Path(__file__).parent / "static" / "vendor"
RECORD = VENDOR / "VENDORED.json"
# Det Fælles Designsystem: its compiled stylesheet and the fonts and images it refers to; its
# JavaScript is not taken, as the pages work without it
DKFDS = "11.2.0"
STYLESHEET = "dist/css/dkfds.min.css"
LICENCES = ("LICENSE.md", "dist/fonts/IBMPlexSans/complete/woff2/license.txt")
# axe-core: the accessibility rules the browser tests run on the pages (never loaded by the pages)
AXE_CORE = "4.10.2"
AXE_FILES = ("axe.min.js", "LICENSE")


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return answer.read()


def checked_tarball(name: str, version: str) -> tuple[dict, bytes]:
    """The package's registry metadata and its tarball, whose sha512 matches the metadata's integrity."""
    meta = json.loads(fetch(f"{REGISTRY}/{name}/{version}"))
    tarball = fetch(meta["dist"]["tarball"])
    algorithm, expected = meta["dist"]["integrity"].split("-", 1)
    if algorithm != "sha512" or base64.b64encode(hashlib.sha512(tarball).digest()).decode() != expected:
        raise SystemExit(f"{name}@{version}: the tarball does not match the registry's integrity {meta['dist']['integrity']}")
    return meta, tarball


def referenced(stylesheet: str, css: str) -> list[str]:
    """Package paths of the files `css` (at `stylesheet`) refers to with url(...), data: URLs aside."""
    found = set()
    for url in re.findall(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)", css):
        if not url.startswith("data:"):
            found.add(posixpath.normpath(posixpath.join(posixpath.dirname(stylesheet), url.split("?")[0].split("#")[0])))
    return sorted(found)


def vendor_dkfds() -> dict:
    meta, tarball = checked_tarball("dkfds", DKFDS)
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        def read(path: str) -> bytes:
            return archive.extractfile(f"package/{path}").read()

        css = read(STYLESHEET)
        wanted = [STYLESHEET, *referenced(STYLESHEET, css.decode()), *LICENCES]
        target = VENDOR / "dkfds"
        shutil.rmtree(target, ignore_errors=True)
        files = {}
        for path in wanted:
            # dist/ dropped: the stylesheet's relative URLs still resolve
            written = target / path.removeprefix("dist/")
            written.parent.mkdir(parents=True, exist_ok=True)
            content = read(path)
            written.write_bytes(content)
            files[written.relative_to(VENDOR).as_posix()] = hashlib.sha256(content).hexdigest()
    return {"name": "dkfds", "version": DKFDS, "license": meta["license"], "tarball": meta["dist"]["tarball"],
            "integrity": meta["dist"]["integrity"], "files": files}


def vendor_axe_core() -> dict:
    meta, tarball = checked_tarball("axe-core", AXE_CORE)
    target = VENDOR / "axe-core"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    files = {}
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        for path in AXE_FILES:
            content = archive.extractfile(f"package/{path}").read()
            (target / path).write_bytes(content)
            files[f"axe-core/{path}"] = hashlib.sha256(content).hexdigest()
    return {"name": "axe-core", "version": AXE_CORE, "license": meta["license"], "tarball": meta["dist"]["tarball"],
            "integrity": meta["dist"]["integrity"], "files": files}


def main() -> int:
    record = [vendor_dkfds(), vendor_axe_core()]
    RECORD.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    for package in record:
        print(f"{package['name']} {package['version']} ({package['license']}): {len(package['files'])} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
