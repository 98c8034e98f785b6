"""Write tuned hyperparameters back into one experiment's ``init_kwargs`` in a study config file.

The config is edited by people, so the edit must be surgical: ``ruamel.yaml`` round-trip mode keeps
comments, key order, flow/block style and quotes, and only the target ``init_kwargs`` is touched.
Snakemake reads the file with PyYAML (YAML 1.1) while ruamel writes YAML 1.2, so new floats and
strings are spelled the way a YAML 1.1 reader gives them back, and the written text is re-read with
PyYAML and checked before anything on disk changes. The original is kept as a timestamped backup,
the new text replaces the file atomically, and the change is returned as a unified diff. The whole
read-edit-replace holds a lock on the file, so concurrent updates of different experiments all land.
"""
from __future__ import annotations

import contextlib
import copy
import difflib
import fcntl
import io
import itertools
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError as RuamelYAMLError
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.util import load_yaml_guess_indent

from rlpipe.errors import ConfigError
from rlpipe.io.atomic import write_text
from rlpipe.spec.config import load_config_file, merge_configs, plain_value, yaml11_float_text
from rlpipe.spec.experiment import validate_study

# Where a new init_kwargs goes: after the last of these keys present (the order of config/README.md).
_INSERT_AFTER = ("agent", "train_env", "eval_env")
_BLOCK_KEY = re.compile(r"^( *)[^\s#-][^#]*:\s*(#.*)?$")  # "key:" opening a block, maybe commented
_WIDTH = 4096  # never fold a long flow mapping onto a second line
_YAML11 = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True)
class WritebackResult:
    """What :func:`update_init_kwargs` did; ``backup`` is None when nothing was written."""

    path: Path
    backup: Path | None
    diff: str
    changed: bool


def update_init_kwargs(
    config_path: str | os.PathLike,
    experiment: str,
    new_kwargs: Mapping[str, Any],
    *,
    backup_dir: str | os.PathLike | None = None,
    now: datetime | None = None,
    config_files: Sequence[str | os.PathLike] = (),
) -> WritebackResult:
    """Merge ``new_kwargs`` into ``experiments.<experiment>.init_kwargs`` of the config file.

    Keys of ``new_kwargs`` overwrite, other keys stay. The file is only rewritten (after a backup
    of the original) if a value changes and the result passes :func:`validate_study`: on its own, or, given
    ``config_files`` (every config file in use, in order, ``config_path`` among them), merged with the others
    as Snakemake merges them. On any :class:`ConfigError` the file is untouched and no backup is left.
    """
    path = Path(config_path)
    with _locked(path):
        return _update_locked(path, experiment, new_kwargs, backup_dir, now, [Path(f) for f in config_files])


def _update_locked(path: Path, experiment: str, new_kwargs: Mapping[str, Any], backup_dir: str | os.PathLike | None,
                   now: datetime | None, config_files: list[Path]) -> WritebackResult:
    """:func:`update_init_kwargs` once the caller holds the file's lock."""
    raw = _read_bytes(path)
    old_text, newline = _decode(raw, path)
    kwargs = {str(key): plain_value(value, f"experiments.{experiment}.init_kwargs.{key}") for key, value in new_kwargs.items()}
    old_data = _safe_load(old_text, path)
    current = _current_init_kwargs(old_data, experiment, path)
    if all(key in current and _same(current[key], value) for key, value in kwargs.items()):
        return WritebackResult(path=path, backup=None, diff="", changed=False)
    new_text = _render(old_text, experiment, kwargs, path)
    _check_result(old_data, new_text, experiment, kwargs, path, config_files)
    folder = Path(backup_dir) if backup_dir is not None else path.parent
    backup = _write_backup(raw, path, folder, now or datetime.now())
    try:
        _replace_text(path, new_text.replace("\n", newline))
    except BaseException:
        backup.unlink(missing_ok=True)  # the original is intact, so the backup would only be clutter
        raise
    return WritebackResult(path=path, backup=backup, diff=format_diff(old_text, new_text, path.name), changed=True)


def format_diff(old_text: str, new_text: str, name: str) -> str:
    """Unified diff of two versions of file ``name``, git-style (``a/name`` → ``b/name``), for logs."""
    lines = difflib.unified_diff(
        _diff_lines(old_text), _diff_lines(new_text), fromfile=f"a/{name}", tofile=f"b/{name}")
    return "".join(lines)


# ---------------------------------------------------------------------------------------------- locking
@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the config file itself while it is read, edited and replaced.

    The select jobs of several experiments update the same file, often at the same moment: unlocked,
    both would read the original and the later write would drop the earlier edit. Locking the file
    itself leaves no lock file beside it; since an edit replaces the file, a waiter that got the lock
    of the replaced file tries again on the new one. It is opened for writing because NFS grants an
    exclusive flock only then. A file that cannot be opened is not locked: reading it reports why.
    """
    target = path.resolve()
    while True:
        try:
            fd = os.open(target, os.O_RDWR)
        except OSError:
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by closing fd
            if _same_inode(fd, target):
                yield
                return
        finally:
            os.close(fd)
    yield


def _same_inode(fd: int, path: Path) -> bool:
    """Whether ``fd`` is still the file at ``path`` (not one an edit has since replaced)."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino)


# ---------------------------------------------------------------------------------------------- reading
def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    """The text with ``\\n`` line ends, and the line end to write back (a CRLF file stays CRLF)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text: {error}") from None
    newline = "\r\n" if "\r\n" in text else "\n"
    return text.replace("\r\n", "\n"), newline


def _safe_load(text: str, path: Path) -> Any:
    """The document as Snakemake sees it (PyYAML, YAML 1.1)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None


def _current_init_kwargs(data: Any, experiment: str, path: Path) -> dict[str, Any]:
    """The experiment's init_kwargs as PyYAML reads them, after checking the document's shape."""
    entry = _experiment_entry(data, experiment, path)
    init_kwargs = entry.get("init_kwargs")
    if init_kwargs is None:
        return {}
    if not isinstance(init_kwargs, dict):
        raise ConfigError(f"{path}: experiments.{experiment}.init_kwargs is not a mapping")
    return init_kwargs


def _experiment_entry(data: Any, experiment: str, path: Path) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the config must be a mapping with an 'experiments' key")
    experiments = data.get("experiments")
    if not isinstance(experiments, Mapping):
        raise ConfigError(f"{path}: no 'experiments' mapping, so there is no experiment '{experiment}' to update")
    if experiment not in experiments:
        names = ", ".join(map(str, experiments)) or "none"
        raise ConfigError(f"{path}: no experiment named '{experiment}' (experiments: {names})")
    entry = experiments[experiment]
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{path}: experiments.{experiment} is not a mapping")
    return entry


# ---------------------------------------------------------------------------------------------- values
def _same(old: Any, new: Any) -> bool:
    """Equal and of the same type, so 1 → 1.0 or 1 → True counts as a change (the YAML differs)."""
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new))
    if isinstance(old, dict) and isinstance(new, dict):
        return old.keys() == new.keys() and all(_same(old[k], new[k]) for k in old)
    if isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new):
        return True
    return type(old) is type(new) and old == new


def yaml11_float(value: float) -> str:
    """Shortest spelling of ``value`` that YAML 1.1 reads as a float: '1e-05' → '1.0e-05', inf → '.inf'."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return yaml11_float_text(repr(value))


class _Yaml11SafeRepresenter(RoundTripRepresenter):
    """Round-trip representer whose new floats and strings read back unchanged under YAML 1.1.

    ruamel (YAML 1.2) writes 1e-05 and leaves 'yes' or '12:30' unquoted; PyYAML reads those as a
    string, a bool and an int. Values loaded from the file keep their own (ruamel scalar) types and
    representers, so their spelling is untouched.
    """

    def represent_yaml11_float(self, data: float) -> Any:
        return self.represent_scalar("tag:yaml.org,2002:float", yaml11_float(data))

    def represent_yaml11_str(self, data: str) -> Any:
        if _YAML11.resolve(yaml.ScalarNode, data, (True, False)) != _STR_TAG:
            return self.represent_scalar(_STR_TAG, data, style="'")
        return self.represent_str(data)


_Yaml11SafeRepresenter.add_representer(float, _Yaml11SafeRepresenter.represent_yaml11_float)
_Yaml11SafeRepresenter.add_representer(str, _Yaml11SafeRepresenter.represent_yaml11_str)


# ---------------------------------------------------------------------------------------------- editing
def _round_trip_yaml(text: str) -> YAML:
    """A ruamel round-tripper set up to reproduce ``text``'s layout (indents, quotes, no folding)."""
    handler = YAML(typ="rt")
    handler.Representer = _Yaml11SafeRepresenter
    handler.preserve_quotes = True
    handler.width = _WIDTH
    mapping = _guess_mapping_indent(text) or 2
    # ruamel's guess describes the first block sequence: its item indent and its dash offset.
    _, sequence, offset = load_yaml_guess_indent(text)
    if offset is None:
        handler.indent(mapping=mapping, sequence=mapping, offset=0)
    else:
        handler.indent(mapping=mapping, sequence=sequence, offset=offset)
    return handler


def _guess_mapping_indent(text: str) -> int | None:
    """Indent of the first block mapping nested under a ``key:`` line (ruamel would re-indent to 2)."""
    parent = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if parent is not None and not stripped.startswith("-") and indent > parent:
            return indent - parent
        match = _BLOCK_KEY.match(line)
        parent = len(match.group(1)) if match else None
    return None


def _render(old_text: str, experiment: str, kwargs: dict[str, Any], path: Path) -> str:
    """The config text with ``kwargs`` merged into the experiment's init_kwargs, all else as it was."""
    try:
        handler = _round_trip_yaml(old_text)
        document = handler.load(old_text)
    except RuamelYAMLError as error:  # ruamel is stricter than PyYAML in a few corners (e.g. duplicate keys)
        raise ConfigError(f"{path}: cannot be edited preserving its layout: {error}") from None
    entry = document["experiments"][experiment]
    target = _own_init_kwargs(entry)
    for key, value in kwargs.items():
        target[key] = value
    out = io.StringIO()
    handler.dump(document, out)
    return _realign_comments(old_text, out.getvalue())


def _realign_comments(old_text: str, new_text: str) -> str:
    """Put end-of-line comments of edited lines back in their old column (ruamel re-emits an edited flow
    mapping with its comment one space after it). A line is only touched when its old and new versions
    end with the same comment; should a '#' inside a quoted value still be taken for one, the
    realigned text would read differently, and the text is returned as ruamel wrote it."""
    old_lines, new_lines = old_text.split("\n"), new_text.split("\n")
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag != "replace" or a1 - a0 != b1 - b0:
            continue
        for old, k in zip(old_lines[a0:a1], range(b0, b1)):
            column = old.find(" #") + 1
            comment = old[column:] if column else ""
            if comment and new_lines[k].endswith(comment):
                code = new_lines[k][:-len(comment)].rstrip()
                new_lines[k] = f"{code.ljust(column - 1)} {comment}" if len(code) < column else f"{code} {comment}"
    realigned = "\n".join(new_lines)
    return realigned if yaml.safe_load(realigned) == yaml.safe_load(new_text) else new_text


def _own_init_kwargs(entry: CommentedMap) -> CommentedMap:
    """The mapping to edit: created if absent, copied if shared through an anchor or a merge key."""
    existing = entry.get("init_kwargs")
    own_key = "init_kwargs" in _own_keys(entry)
    if isinstance(existing, CommentedMap) and own_key and existing.anchor.value is None:
        return existing
    fresh = CommentedMap(copy.deepcopy(dict(existing)) if isinstance(existing, Mapping) else {})
    _match_sibling_style(entry, fresh)
    if own_key:
        entry["init_kwargs"] = fresh
    else:
        entry.insert(_insert_position(entry), "init_kwargs", fresh)
    return fresh


def _own_keys(entry: CommentedMap) -> set[Any]:
    """Keys written in the entry itself, not pulled in by a ``<<:`` merge key."""
    if getattr(entry, "merge", None):
        return set(getattr(entry, "_ok", entry.keys()))
    return set(entry.keys())


def _match_sibling_style(entry: CommentedMap, new_map: CommentedMap) -> None:
    """Flow style if the experiment writes its other mappings flow style (as config.yaml does)."""
    siblings = [value for value in entry.values() if isinstance(value, CommentedMap)]
    if siblings and all(value.fa.flow_style() for value in siblings):
        new_map.fa.set_flow_style()
    else:
        new_map.fa.set_block_style()


def _insert_position(entry: CommentedMap) -> int:
    keys = list(entry.keys())
    present = [keys.index(key) for key in _INSERT_AFTER if key in keys]
    return max(present) + 1 if present else len(keys)


# ---------------------------------------------------------------------------------------------- checking
def _check_result(old_data: Any, new_text: str, experiment: str, kwargs: dict[str, Any], path: Path,
                  config_files: list[Path]) -> None:
    """Refuse text that PyYAML reads differently from the intended edit, or that fails validation (merged with the
    other ``config_files``, if any)."""
    new_data = _safe_load(new_text, path)
    expected = copy.deepcopy(old_data)
    entry = expected["experiments"][experiment]
    entry["init_kwargs"] = {**(entry.get("init_kwargs") or {}), **kwargs}
    if not _same(new_data, expected):
        where = ", ".join(_differences(expected, new_data)) or "(top level)"
        raise ConfigError(
            f"{path}: updating experiments.{experiment}.init_kwargs would not read back as intended under "
            f"YAML 1.1 (differs at: {where}; a value PyYAML reads differently, or an anchor/merge key shared "
            "with another experiment); the file was left unchanged")
    edited = path.resolve()
    if not any(f.resolve() == edited for f in config_files):
        config_files = [*config_files, path]
    merged = merge_configs(new_data if f.resolve() == edited else load_config_file(f) for f in config_files)
    try:
        validate_study(merged)
    except ConfigError as error:
        others = [str(f) for f in config_files if f.resolve() != edited]
        merged_with = f" (merged with {', '.join(others)})" if others else ""
        raise ConfigError.listing(f"{path}: writing these init_kwargs would make the config{merged_with} invalid",
                                  error.problems) from None


def _differences(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Dotted paths where two loaded documents differ, to say what an edit would wrongly change."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        keys = list(expected) + [key for key in actual if key not in expected]
        return [p for key in keys for p in _differences(expected.get(key), actual.get(key), f"{where}.{key}".lstrip("."))]
    return [] if _same(expected, actual) else [where]


# ---------------------------------------------------------------------------------------------- writing
def _write_backup(raw: bytes, path: Path, folder: Path, now: datetime) -> Path:
    """Copy the original bytes to ``<stem>.<YYYYmmdd-HHMMSS>[-N].bak.yaml``, never overwriting a file."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    for counter in itertools.count():
        candidate = folder / f"{path.stem}.{stamp}{f'-{counter}' if counter else ''}.bak.yaml"
        try:
            _write_new_file(candidate, raw)
        except FileExistsError:
            continue
        return candidate
    raise AssertionError("unreachable")


def _write_new_file(path: Path, data: bytes) -> None:
    """Create ``path`` exclusively (FileExistsError if it exists, so a concurrent backup is never clobbered)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _replace_text(path: Path, text: str) -> None:
    """Atomic replace of the file a symlinked config points to (the link stays a link)."""
    write_text(path.resolve(), text)


def _diff_lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines
