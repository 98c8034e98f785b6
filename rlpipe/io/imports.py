"""Resolve import paths named in a config (``pkg.mod.Name`` or ``pkg.mod:name``) to objects."""
from __future__ import annotations

import importlib
from typing import Any


def import_object(path: str) -> Any:
    """Import ``pkg.mod:attr`` or ``pkg.mod.attr``; raise ImportError with a message naming ``path``.

    Only imports and attribute look-ups happen: a config value is never evaluated as code.
    """
    if not isinstance(path, str) or not path.strip():
        raise ImportError(f"an import path must be a non-empty string like 'package.module:Name', got {path!r}")
    module_name, sep, attr_path = path.partition(":")
    if not sep:
        module_name, _, attr_path = path.rpartition(".")
    names = [*module_name.split("."), *attr_path.split(".")]
    if not all(name.isidentifier() for name in names):
        raise ImportError(f"'{path}' is not an import path: expected 'package.module.Name' or 'package.module:Name'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ImportError(f"cannot import '{path}': no module named '{error.name}'") from error
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise ImportError(f"cannot import '{path}': module '{module_name}' has no attribute '{attr_path}'") from None
    return obj


def object_path(obj: Any) -> str:
    """The ``pkg.mod:qualname`` import path of a class or function (inverse of :func:`import_object`)."""
    return f"{obj.__module__}:{obj.__qualname__}"


def importable_path(obj: Any) -> str | None:
    """The import path that gives back ``obj`` itself, or None when there is none (a lambda, a local function,
    a class defined in ``__main__`` or a notebook, an instance)."""
    if not (isinstance(obj, type) or callable(obj)) or not hasattr(obj, "__qualname__"):
        return None
    if getattr(obj, "__module__", "__main__") == "__main__" or "<" in obj.__qualname__:
        return None
    path = object_path(obj)
    try:
        return path if import_object(path) is obj else None
    except ImportError:
        return None
