"""The install is the lock: every way imgbot is installed takes uv.lock, with the same uv."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _uv_version(text: str, pattern: str) -> str:
    found = re.search(pattern, text, re.MULTILINE)
    assert found is not None, pattern
    return found.group(1)


def test_make_and_the_image_use_one_uv() -> None:
    """The Dockerfile pins the uv the Makefile pins, so the image installs the lock as tests do."""
    make = _uv_version((ROOT / "Makefile").read_text(), r"^UV_VERSION\s*:=\s*(\S+)$")
    docker = (ROOT / "infra/docker/imgbot.Dockerfile").read_text()
    assert _uv_version(docker, r"^ARG UV_VERSION=(\S+)$") == make


def test_every_install_is_frozen() -> None:
    """make and the image install from uv.lock without resolving anew."""
    make = (ROOT / "Makefile").read_text()
    assert "sync --frozen" in make and "pip install -e" not in make
    docker = (ROOT / "infra/docker/imgbot.Dockerfile").read_text()
    assert "uv export --frozen" in docker and "--require-hashes" in docker


def test_the_lock_holds_every_extra_with_hashes() -> None:
    """uv.lock covers the runtime, test and fuzz extras, and every package has a hash."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    project = next(p for p in lock["package"] if p["name"] == "imgbot")
    assert set(project.get("optional-dependencies", {})) >= {"test", "fuzz"}
    for package in lock["package"]:
        if package["name"] == "imgbot":
            continue
        files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        assert files and all(f.get("hash", "").startswith("sha256:") for f in files), package[
            "name"
        ]
