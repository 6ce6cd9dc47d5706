"""The endpoint table (``server/endpoints.py``) and the route modules' registrations agree:
every endpoint is registered exactly once, every registration names a known endpoint, every
handler is a module-level function with a docstring and a return type.
"""

from __future__ import annotations

import inspect
from collections import Counter

import pytest

from offline_cave.server import app
from offline_cave.server.endpoints import ENDPOINTS


def test_every_endpoint_is_registered_exactly_once() -> None:
    counts = Counter(name for name, _, _ in app.registered_routes())
    assert sorted(n for n, c in counts.items() if c > 1) == []
    assert sorted(set(ENDPOINTS) - set(counts)) == []
    assert sorted(set(counts) - set(ENDPOINTS)) == []


def test_every_handler_has_an_endpoint() -> None:
    registered = {id(handler) for _, handler, _ in app.registered_routes()}
    for module in (app, *app.ROUTE_MODULES):
        handlers = [obj for _, obj in inspect.getmembers(module, inspect.iscoroutinefunction)
                    if hasattr(obj, "sync_handler")]
        assert handlers, module.__name__
        for handler in handlers:
            assert id(handler) in registered, f"{module.__name__}.{handler.__name__}"


def test_handlers_are_documented_and_typed() -> None:
    for name, handler, methods in app.registered_routes():
        inner = handler.sync_handler
        assert inner.__doc__, name
        assert inspect.signature(inner).return_annotation not in (inspect.Signature.empty, None)
        assert "<locals>" not in inner.__qualname__, f"{name}: handler is a closure"
        assert set(methods) <= {"GET", "POST", "HEAD"}, name


def test_build_routes_follows_the_table() -> None:
    routes = app.build_routes()
    assert [r.path for r in routes] == list(ENDPOINTS.values())


@pytest.mark.parametrize("broken", ["duplicate", "unknown", "missing"])
def test_build_routes_refuses_a_bad_registration(monkeypatch: pytest.MonkeyPatch,
                                                 broken: str) -> None:
    good = list(app.ROUTES)
    handler = good[0][1]
    if broken == "duplicate":
        bad = [*good, ("root", handler, ["GET"])]
    elif broken == "unknown":
        bad = [*good, ("no.such.endpoint", handler, ["GET"])]
    else:
        bad = []
    monkeypatch.setattr(app, "ROUTES", bad)
    with pytest.raises(ValueError):
        app.build_routes()
