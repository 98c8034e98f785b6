"""Keyword introspection used to validate init kwargs and env kwargs."""
from __future__ import annotations

from rlpipe.runtime.keywords import accepted_keywords, rejected_keywords, suggestion


def plain(a, b=1, *, c=2):
    return a


def open_ended(a, **kwargs):
    return a


class Base:
    def __init__(self, x, **kwargs):
        pass


class Closed(Base):
    def __init__(self, y, **kwargs):
        super().__init__(**kwargs)


class Fixed:
    def __init__(self, z=0):
        pass


class Child(Fixed):
    def __init__(self, w, **kwargs):
        super().__init__(**kwargs)


def test_functions_accept_their_named_parameters_or_anything_with_kwargs():
    assert accepted_keywords(plain) == {"a", "b", "c"}
    assert accepted_keywords(open_ended) is None


def test_classes_follow_kwargs_up_the_mro():
    assert accepted_keywords(Fixed) == {"z"}
    assert accepted_keywords(Child) == {"w", "z"}
    assert accepted_keywords(Closed) is None  # Base ends in **kwargs that go nowhere known


def test_rejected_keywords_messages_suggest_or_list():
    assert rejected_keywords("Fixed", ["z", "zz"], {"z"}) == ["Fixed does not accept 'zz' (did you mean 'z'?)"]
    assert rejected_keywords("Fixed", ["q"], {"alpha", "beta"}) == ["Fixed does not accept 'q' (allowed: alpha, beta)"]
    assert rejected_keywords("Open", ["anything"], None) == []
    assert suggestion("gama", ["gamma", "lr"]) == " (did you mean 'gamma'?)"
