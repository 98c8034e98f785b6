"""Keyword introspection used to validate init kwargs and env kwargs."""
from __future__ import annotations

from rlpipe.runtime.keywords import accepted_keywords, method_keywords, rejected_keywords, suggestion


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


class Methods:
    def eval(self, horizon=5, *, gamma=1.0):
        return horizon

    def anything(self, **kwargs):
        return kwargs

    @staticmethod
    def static(first, second=0):
        return first

    @classmethod
    def build(cls, size=1):
        return cls()


class InheritsMethods(Methods):
    pass


def test_methods_accept_their_named_parameters_but_not_self():
    assert accepted_keywords(Methods.eval) == {"self", "horizon", "gamma"}  # a plain function, read as such
    assert method_keywords(Methods, "eval") == {"horizon", "gamma"}
    assert method_keywords(InheritsMethods, "eval") == {"horizon", "gamma"}
    assert method_keywords(Methods, "anything") is None
    assert method_keywords(Methods, "static") == {"first", "second"}  # no instance: the first parameter is kept
    assert method_keywords(Methods, "build") == {"size"}
