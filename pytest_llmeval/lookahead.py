"""Which LLM test cases may run before their turn, with what arguments, and which come next.

A case runs ahead only when that cannot change its meaning: every fixture it uses is one of
its own parameters, the plugin's `llm`, `llm_model`, `judge` or `similar` (built the same way
here), or a
session-scoped fixture already set up (its value cannot differ). Anything else (`tmp_path`,
`monkeypatch`, a user's function-scoped or autouse fixture, a `skip` mark, Hypothesis, an async
test that pytest-asyncio or anyio runs) keeps the case in its place, and the reason is given.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

PLUGIN = "pytest_llmeval.plugin"
BUILT = frozenset(
    {"llm", "llm_model", "judge", "similar"}
)  # function-scoped plugin fixtures built for the case


@dataclass
class Readiness:
    """A case's fixture values when it may run ahead now; else why not (`reason`), or nothing
    when it may run ahead later (a session fixture it needs is not set up yet)."""

    values: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    ready: bool = True


NOT_YET = Readiness(ready=False)


class SessionFixtures:
    """Values of the session-scoped fixtures that are set up now, by fixture definition."""

    def __init__(self) -> None:
        self.values: dict[int, Any] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, Any, Any]:
        value = yield
        if fixturedef.scope == "session":
            self.values[id(fixturedef)] = value
        return value

    def pytest_fixture_post_finalizer(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> None:
        self.values.pop(id(fixturedef), None)


def global_reason(config: pytest.Config) -> str | None:
    """Why no case of this run may run ahead, if none may."""
    option = config.getoption
    if option("usepdb", False) or option("trace", False):
        return "--pdb/--trace stop inside a test"
    if option("setuponly", False) or option("setupplan", False):
        return "--setup-only/--setup-plan run no test body"
    if hasattr(config, "workerinput") and option("dist", "no") == "worksteal":
        return "--dist worksteal may move a queued case to another worker"
    return None


def readiness(
    item: pytest.Function,
    fixtures: SessionFixtures,
    async_by_plugin: bool,
    declared_safe: frozenset[str] = frozenset(),
) -> Readiness:
    """May `item` run ahead now, and with which fixture values (beyond `llm`/`llm_model`)?
    `declared_safe` names fixtures the user declared harmless (`ahead_fixtures`), as long as
    the test does not take them as arguments."""
    if async_by_plugin:
        return Readiness(reason="an async test run by pytest-asyncio or anyio")
    if getattr(item.obj, "is_hypothesis_test", False):
        return Readiness(reason="a Hypothesis test")
    for name in ("skip", "skipif"):
        if item.get_closest_marker(name) is not None:
            return Readiness(reason=f"marked {name}")
    xfail = item.get_closest_marker("xfail")
    if xfail is not None and not xfail.kwargs.get("run", True):
        return Readiness(reason="marked xfail(run=False)")
    info = getattr(item, "_fixtureinfo", None)  # pytest exposes no public fixture lookup
    definitions = getattr(info, "name2fixturedefs", None)
    if definitions is None:
        return Readiness(reason="this pytest does not say which fixtures a test uses")
    own = set(inspect.signature(item.obj).parameters)
    params = getattr(getattr(item, "callspec", None), "params", {})
    values: dict[str, Any] = {}
    for name in _needed(item, definitions, declared_safe - own):
        if name == "request":
            if name in own:
                return Readiness(reason="takes the `request` fixture")
            continue
        chain = definitions.get(name)
        if not chain:
            return Readiness(reason=f"uses fixture {name!r}, which pytest cannot find")
        fixturedef = chain[-1]
        where = getattr(fixturedef.func, "__module__", None)
        if name in params and where == "_pytest.python":
            values[name] = params[name]
        elif name in BUILT and where == PLUGIN:
            continue
        elif fixturedef.scope == "session" and (name not in own or where == PLUGIN):
            if id(fixturedef) not in fixtures.values:
                return NOT_YET
            values[name] = fixtures.values[id(fixturedef)]
        else:
            return Readiness(reason=f"uses fixture {name!r} ({fixturedef.scope} scope)")
    return Readiness(values)


def _needed(item: pytest.Function, definitions: Any, harmless: frozenset[str]) -> list[str]:
    """The fixtures the case sets up, leaving out the harmless ones and what only they need."""
    if not harmless:
        return list(item.fixturenames)
    roots = getattr(getattr(item, "_fixtureinfo", None), "initialnames", item.fixturenames)
    needed: list[str] = []
    stack = [name for name in roots if name not in harmless]
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.append(name)
        chain = definitions.get(name) or ()
        for parent in chain:  # an override may request the fixture it overrides
            stack.extend(n for n in parent.argnames if n not in harmless and n not in needed)
    return needed


class Upcoming:
    """The cases this process will run next, in order, from the one running now."""

    def __init__(self, session: pytest.Session) -> None:
        self.items = session.items
        self.index = {id(item): i for i, item in enumerate(self.items)}
        self.worker = hasattr(session.config, "workerinput")
        self.queue = _worker_queue(session.config) if self.worker else None

    def after(self, item: pytest.Item) -> Iterator[pytest.Item]:
        if not self.worker:
            start = self.index.get(id(item))
            if start is not None:  # indexing, not slicing: the caller stops after a few
                yield from (self.items[i] for i in range(start, len(self.items)))
            return
        yield item
        if self.queue is None:
            return
        following = getattr(self.queue, "nextitem_index", None)
        if isinstance(following, int):
            yield self.items[following]
        with self.queue.torun.lock() as queued:
            indices = [i for i in queued if isinstance(i, int)]
        yield from (self.items[i] for i in indices)


def _worker_queue(config: pytest.Config) -> Any:
    """pytest-xdist's worker loop, which holds the queue of cases sent to this worker.

    xdist has no public API for it; when its shape is not the expected one, a worker looks no
    further than the case running now."""
    for plugin in config.pluginmanager.get_plugins():
        queue = getattr(plugin, "torun", None)
        if type(plugin).__name__ == "WorkerInteractor" and callable(getattr(queue, "lock", None)):
            return plugin
    return None
