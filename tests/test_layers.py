"""Every module of imgbot sits in the import-linter layers contract, so none escapes the check."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The package's own plumbing and the simulator, which has a contract of its own.
OUTSIDE_LAYERS = {"imgbot.__init__", "imgbot.__main__", "imgbot.simulator"}


def test_every_module_is_in_a_layer() -> None:
    """A new module must be placed in a layer (pyproject.toml) before it can land."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    named = {name.strip() for layer in layers for name in re.split(r"[|:]", layer)}
    modules = {
        f"imgbot.{path.stem if path.is_file() else path.name}"
        for path in (ROOT / "imgbot").iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").is_file())
    }
    assert modules - OUTSIDE_LAYERS - named == set()
    assert named - modules == set()


def test_every_module_is_watched_for_the_guarded_libraries() -> None:
    """The contracts naming who may import dingtalk_stream, minio, tenacity and redis list every
    module but their owner, so a new module cannot import them unnoticed."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    owners = {
        "dingtalk_stream": "imgbot.bot",
        "minio": "imgbot.setup",
        "tenacity": "imgbot.retry",
        "redis": "imgbot.state",
    }
    modules = {
        f"imgbot.{path.stem if path.is_file() else path.name}"
        for path in (ROOT / "imgbot").iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").is_file())
    } - {"imgbot.__init__", "imgbot.__main__"}
    for contract in config["tool"]["importlinter"]["contracts"]:
        forbidden = contract.get("forbidden_modules", [])
        if contract["type"] == "forbidden" and forbidden[0] in owners:
            owner = owners[forbidden[0]]
            assert set(contract["source_modules"]) == modules - {owner}, contract["name"]
