"""The package as the index gets it (issue 26): the sdist carries the LICENSE, the notices and everything that rebuilds
the front-ends; `npm ci` and both builds inside the unpacked sdist reproduce the committed bundles byte for byte, and
the wheel built from the sdist is identical to the one built from the checkout; the wheel ships the licence and the
notices; the metadata is complete, README's links work on the index page, and `twine check --strict` passes."""

from __future__ import annotations

import email
import filecmp
import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel  # build, twine and npm run as processes

REPO = Path(__file__).resolve().parent.parent
RENDERER = "share/jupyter/labextensions/elk-jupyter-renderer"
BUNDLES = ("elk_jupyter/static", "elk_jupyter/labextension")
# What each bundled library's licence must say, in full, in the notices beside the bundle.
LICENCE_TEXT = {
    "marked": "Permission is hereby granted",
    "dompurify": "Apache License",
    "highlight.js": "Redistribution and use in source and binary forms",
}


def build(source: Path, out: Path, *kinds: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", *kinds, "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    build(REPO, out, "--sdist", "--wheel")
    return next(out.glob("*.tar.gz")), next(out.glob("*.whl"))


def tracked(*paths: str) -> set[str]:
    listed = subprocess.run(["git", "ls-files", *paths], cwd=REPO, capture_output=True, text=True, check=True)
    return set(listed.stdout.split())


def test_the_sdist_holds_the_licence_and_what_rebuilds_the_front_ends(dists):
    sdist, _ = dists
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    needed = {"LICENSE", "README.md", "CONTRIBUTING.md", "pyproject.toml", "package.json", "package-lock.json"}
    needed |= tracked("js", "labextension", *BUNDLES)  # sources, build scripts, the builder's core metadata, bundles
    assert needed <= names, sorted(needed - names)
    assert not any(part in name.split("/") for name in names for part in ("node_modules", ".git", "__pycache__"))


def test_the_wheel_ships_the_licence_and_full_notices_beside_each_bundle(dists):
    _, wheel = dists
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        data = next(n.split("/")[0] for n in names if n.endswith(".data/data/" + RENDERER + "/package.json"))
        licence = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert "MIT License" in whl.read(licence).decode()
        renderer = f"{data}/data/{RENDERER}"
        listed = json.loads(whl.read(f"{renderer}/static/third-party-licenses.json"))["packages"]
        for notices, bundled in (
            ("elk_jupyter/static/THIRD_PARTY_NOTICES.txt", LICENCE_TEXT),
            (f"{renderer}/THIRD_PARTY_NOTICES.txt", {p["name"]: "" for p in listed} | LICENCE_TEXT),
        ):
            text = whl.read(notices).decode()
            for name, words in bundled.items():
                section = re.search(rf"^{re.escape(name)} \S+, licence .*?(?=^={{20,}}|\Z)", text, flags=re.S | re.M)
                assert section and words in section.group(0), (notices, name)
        package = json.loads(whl.read(f"{renderer}/package.json"))
        assert "@jupyterlab/rendermime-interfaces" not in package["dependencies"], "a types-only dependency"


def test_the_metadata_is_complete_and_readme_links_work_on_the_index(dists):
    _, wheel = dists
    with zipfile.ZipFile(wheel) as whl:
        meta = email.message_from_bytes(whl.read(next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))))
    classifiers = set(meta.get_all("Classifier"))
    assert {
        "Framework :: Jupyter :: JupyterLab :: 4",
        "Framework :: Jupyter :: JupyterLab :: Extensions :: Prebuilt",
        "Programming Language :: Python :: 3.10",
    } <= classifiers
    assert meta["License-Expression"] == "MIT" and meta["Author"] and meta["Keywords"]
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Source", "Issues"} <= set(urls) and all(u.startswith("https://") for u in urls.values())
    readme = meta.get_payload()
    targets = re.findall(r"\]\(([^)\s]+)", readme)
    assert targets and all(t.startswith(("https://", "http://", "mailto:")) for t in targets), [
        t for t in targets if not t.startswith(("https://", "http://", "mailto:"))
    ]
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dists)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_sdist_rebuilds_the_committed_bundles_and_an_identical_wheel(dists, tmp_path):
    sdist, wheel = dists
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    unpacked = next(tmp_path.iterdir())
    for bundle in BUNDLES:  # what the rebuild must reproduce, gone first
        shutil.rmtree(unpacked / bundle)
    npm = shutil.which("npm")
    assert npm, "the front-ends build with Node's npm"
    for command in (
        ["ci", "--no-audit", "--no-fund", "--prefer-offline"],
        ["run", "build"],
        ["run", "build:labextension"],
    ):
        done = subprocess.run([npm, *command, "--loglevel=error"], cwd=unpacked, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for bundle in BUNDLES:
        ours = tracked(bundle)
        rebuilt = {str(p.relative_to(unpacked)) for p in (unpacked / bundle).rglob("*") if p.is_file()}
        assert rebuilt == ours, sorted(rebuilt ^ ours)
        _, mismatch, errors = filecmp.cmpfiles(REPO, unpacked, sorted(ours), shallow=False)
        assert not mismatch and not errors, mismatch + errors
    again = tmp_path / "again"
    build(unpacked, again, "--wheel")
    assert next(again.glob("*.whl")).read_bytes() == wheel.read_bytes()
