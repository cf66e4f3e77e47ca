"""imgbot's exceptions form one tree under ImgbotError (imgbot/errors.py draws it)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import imgbot
from imgbot import errors
from imgbot.errors import ImgbotError


def _imgbot_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined in an imgbot module, by qualified name; the simulator stands
    in for DingTalk and shares no code with the bot, so its own errors are not imgbot's."""
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(imgbot.__path__, "imgbot."):
        if module_info.name.startswith(("imgbot.simulator", "imgbot.__main__")):
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_exception_is_an_imgbot_error() -> None:
    """No module defines an exception outside the ImgbotError tree."""
    exceptions = _imgbot_exceptions()
    assert "imgbot.service.status_server.PortInUse" in exceptions  # the walk reached subpackages
    outside = sorted(name for name, cls in exceptions.items() if not issubclass(cls, ImgbotError))
    assert outside == []


def test_the_tree_drawing_names_every_public_exception() -> None:
    """errors.py's drawing lists every public exception class, wherever it is defined."""
    drawing = errors.__doc__ or ""
    public = {name.rsplit(".", 1)[1] for name in _imgbot_exceptions()}
    missing = sorted(name for name in public if not name.startswith("_") and name not in drawing)
    assert missing == []


def test_port_in_use_is_still_an_os_error() -> None:
    """PortInUse keeps OSError's errno and strerror, which the bot's start reports."""
    from imgbot.service.status_server import PortInUse

    error = PortInUse(98, "cannot listen on 127.0.0.1:1 (Address already in use)")
    assert isinstance(error, OSError) and isinstance(error, ImgbotError)
    assert (error.errno, error.strerror) == (
        98,
        "cannot listen on 127.0.0.1:1 (Address already in use)",
    )
