"""Which keyword arguments a class or function accepts, and one-line messages for those it does not.

Used to reject misspelt ``init_kwargs`` and env ``kwargs`` when the config is validated, instead of
failing later inside a job.
"""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable
from typing import Any


def accepted_keywords(target: Callable[..., Any]) -> set[str] | None:
    """Keyword names ``target`` accepts; for a class, its constructor chain, following ``**kwargs`` up the MRO.

    None when anything goes (a ``**kwargs`` that is not passed on to a known signature).
    """
    if not inspect.isclass(target):
        return _named(inspect.signature(target).parameters.values())
    names: set[str] = set()
    for klass in target.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = list(inspect.signature(klass.__init__).parameters.values())
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return names
        if klass is object:
            break
    return None


def method_keywords(klass: type, name: str) -> set[str] | None:
    """Keyword names the method ``name`` of ``klass`` accepts when called on an instance: ``self`` is not one
    (None when anything goes). Static and class methods are read as they are called."""
    attribute = inspect.getattr_static(klass, name)
    method = getattr(klass, name)
    if isinstance(attribute, (staticmethod, classmethod)) or not inspect.isfunction(method):
        return accepted_keywords(method)
    return _named(list(inspect.signature(method).parameters.values())[1:])  # the first is the instance


def rejected_keywords(owner: str, keywords: Iterable[str], accepted: set[str] | None) -> list[str]:
    """A message for each keyword not in ``accepted`` (nothing when ``accepted`` is None)."""
    if accepted is None:
        return []
    return [f"{owner} does not accept '{key}'{suggestion(key, sorted(accepted))}" for key in keywords if key not in accepted]


def suggestion(word: str, candidates: list[str]) -> str:
    """' (did you mean 'x'?)' for a close candidate, else the list of what is allowed."""
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else f" (allowed: {', '.join(candidates)})"


def _named(parameters: Iterable[inspect.Parameter]) -> set[str] | None:
    parameters = list(parameters)
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
