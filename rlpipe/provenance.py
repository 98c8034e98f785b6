"""What made a result: library versions, a canonical hash of the task, timestamps."""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
from importlib import metadata
from typing import Any

TRACKED_PACKAGES = ("numpy", "gymnasium", "pyarrow", "pandas", "optuna", "snakemake")


def library_versions() -> dict[str, str]:
    """Versions of Python, rlpipe and the libraries that can change a number."""
    import rlpipe

    versions = {"python": platform.python_version(), "rlpipe": rlpipe.__version__}
    for package in TRACKED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def stable_hash(obj: Any) -> str:
    """A short hex digest of ``obj``'s canonical JSON: equal configs give equal hashes on any machine."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:16]


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
