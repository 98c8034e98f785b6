"""rlpipe.io.imports: import paths of a config (``pkg.mod:Name`` or ``pkg.mod.Name``) to objects, with an ImportError
naming the path, never evaluating it as code; and back, for objects that an import path gives back."""
from __future__ import annotations

import functools
import os.path
import re
import uuid

import pytest

from rlpipe.io.imports import import_object, importable_path, object_path
from rlpipe.io.paths import StudyPaths


@pytest.mark.parametrize("path, expected", [
    ("rlpipe.io.paths:StudyPaths", StudyPaths),
    ("rlpipe.io.paths.StudyPaths", StudyPaths),
    ("rlpipe.io.paths:StudyPaths.experiment", StudyPaths.experiment),
    ("os.path.join", os.path.join),
    ("os.path:join", os.path.join),
    ("builtins:len", len),
    ("functools.partial", functools.partial),
])
def test_both_forms_and_nested_attributes(path, expected):
    assert import_object(path) is expected


@pytest.mark.parametrize("path", [None, 3, "", "   "])
def test_a_path_must_be_a_non_empty_string(path):
    with pytest.raises(ImportError, match=f"must be a non-empty string like 'package.module:Name', got {path!r}"):
        import_object(path)


def test_a_bare_name_is_not_an_import_path():
    with pytest.raises(ImportError, match="'StudyPaths' is not an import path: expected 'package.module.Name'"):
        import_object("StudyPaths")


@pytest.mark.parametrize("path, missing", [("no_such_package_xyz.mod:Name", "no_such_package_xyz"),
                                           ("rlpipe.io.no_such_module.Name", "rlpipe.io.no_such_module"),
                                           ("rlpipe.io.paths.StudyPaths.experiment", "rlpipe.io.paths.StudyPaths")])
def test_a_missing_module_is_named(path, missing):
    with pytest.raises(ImportError, match=f"cannot import '{path}': no module named '{missing}'$"):
        import_object(path)


@pytest.mark.parametrize("path, module, attribute", [
    ("rlpipe.io.paths:Nope", "rlpipe.io.paths", "Nope"),
    ("rlpipe.io.paths.Nope", "rlpipe.io.paths", "Nope"),
    ("rlpipe.io.paths:StudyPaths.nope", "rlpipe.io.paths", "StudyPaths.nope"),
])
def test_a_missing_attribute_is_named_with_its_module(path, module, attribute):
    with pytest.raises(ImportError, match=f"cannot import '{path}': module '{module}' has no attribute '{attribute}'$"):
        import_object(path)


def test_a_missing_dependency_of_an_existing_module_is_named(tmp_path, monkeypatch):
    name = f"module_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text("import dependency_that_is_not_installed_xyz\nValue = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="no module named 'dependency_that_is_not_installed_xyz'") as raised:
        import_object(f"{name}:Value")
    assert f"cannot import '{name}:Value'" in str(raised.value)
    assert isinstance(raised.value.__cause__, ModuleNotFoundError)


def test_a_path_is_never_evaluated_as_code(tmp_path):
    mark = tmp_path / "ran"
    code = f"pathlib.Path({str(mark)!r}).touch()"
    for path in (code, f"builtins:exec({code!r})"):
        with pytest.raises(ImportError, match="is not an import path"):
            import_object(path)
    assert not mark.exists()


@pytest.mark.parametrize("path", [":StudyPaths", ".paths:StudyPaths", "..io.paths.StudyPaths", "os:", "a..b:C"])
def test_a_path_with_an_empty_or_relative_name_is_refused_before_any_import(path):
    with pytest.raises(ImportError, match=f"^'{re.escape(path)}' is not an import path"):
        import_object(path)


# ------------------------------------------------------------------------------ object_path and importable_path
class Outer:
    class Inner:
        pass


def test_object_path_is_module_colon_qualname():
    assert object_path(StudyPaths) == "rlpipe.io.paths:StudyPaths"
    assert object_path(StudyPaths.experiment) == "rlpipe.io.paths:StudyPaths.experiment"
    assert object_path(Outer.Inner) == f"{__name__}:Outer.Inner"
    assert import_object(object_path(StudyPaths.experiment)) is StudyPaths.experiment


@pytest.mark.parametrize("obj, path", [(StudyPaths, "rlpipe.io.paths:StudyPaths"), (len, "builtins:len"),
                                       (StudyPaths.experiment, "rlpipe.io.paths:StudyPaths.experiment"),
                                       (os.path.join, f"{os.path.join.__module__}:join")])
def test_importable_path_of_objects_an_import_gives_back(obj, path):
    assert importable_path(obj) == path and import_object(path) is obj


def _local_function():
    def local():
        pass

    class Local:
        pass

    return local, Local


def _impostor():
    """A function claiming to be rlpipe.io.paths:StudyPaths: that path gives back another object."""


_impostor.__module__, _impostor.__qualname__ = "rlpipe.io.paths", "StudyPaths"


def _from_missing_module():
    pass


_from_missing_module.__module__ = "no_such_package_xyz"


@pytest.mark.parametrize("obj", [
    lambda: None,
    _local_function()[0],
    _local_function()[1],
    type("InMain", (), {"__module__": "__main__"}),
    StudyPaths(),  # an instance
    StudyPaths().experiment,  # a bound method: its path gives the function
    functools.partial(len),
    _impostor,
    _from_missing_module,
    3,
], ids=["lambda", "local-function", "local-class", "class-in-main", "instance", "bound-method", "partial",
        "path-gives-another-object", "module-gone", "int"])
def test_importable_path_is_none_when_no_import_gives_the_object_back(obj):
    assert importable_path(obj) is None
