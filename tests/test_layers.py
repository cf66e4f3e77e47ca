"""Every package and top-level module of imgbot sits in the import-linter layers contract."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The package's own plumbing and the simulator, which has a contract of its own.
OUTSIDE_LAYERS = {"imgbot.__init__", "imgbot.__main__", "imgbot.simulator"}
MAX_TOP_MODULES = 12


def _top_level() -> dict[str, Path]:
    return {
        f"imgbot.{path.stem if path.is_file() else path.name}": path
        for path in (ROOT / "imgbot").iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").is_file())
    }


def test_every_module_is_in_a_layer() -> None:
    """A new package or top-level module must be placed in a layer before it can land."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    named = {name.strip() for layer in layers for name in re.split(r"[|:]", layer)}
    modules = set(_top_level())
    assert modules - OUTSIDE_LAYERS - named == set()
    assert named - modules == set()


def test_the_top_of_the_package_stays_small() -> None:
    """At most a dozen modules sit at the top of imgbot/; the rest live in packages by concern."""
    files = [name for name, path in _top_level().items() if path.is_file()]
    assert len(files) <= MAX_TOP_MODULES, sorted(files)


def test_contracts_name_packages_not_modules() -> None:
    """The contracts stay short: no more than 60 module names in all."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = 0
    for contract in config["tool"]["importlinter"]["contracts"]:
        for key in (
            "layers",
            "source_modules",
            "forbidden_modules",
            "protected_modules",
            "allowed_importers",
        ):
            for entry in contract.get(key, []):
                names += len(re.split(r"[|:]", entry))
    assert names <= 60
