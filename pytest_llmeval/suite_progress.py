"""The finished cases of suites that stop over cases (`design="sequential"`), shared by the
processes of a run (the xdist workers) through a file in the run folder, and whether a suite x
model is settled: its verdict and, against a baseline, its paired regression."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from pytest_llmeval.calls.shared_file import SharedFile
from pytest_llmeval.verdict.marker import Plan
from pytest_llmeval.verdict.stats import Mode
from pytest_llmeval.verdict.suite import Population, _interleaved
from pytest_llmeval.verdict.suite_stopping import Stop, SuiteRule, decide, regression_settled

Outcomes = Mapping[str, Sequence[bool]]  # case -> valid outcomes


def canonical(cases: Sequence[str]) -> tuple[dict[str, int], str]:
    """Each collected case's position in the canonical order (golden-ratio interleaved over the
    collection order), and a key of the collection."""
    ranks = {cases[i]: position for position, i in enumerate(_interleaved(len(cases)))}
    return ranks, hashlib.sha256("\n".join(cases).encode()).hexdigest()[:12]


class SuiteProgress:
    """Finished cases by suite x model x collection, in one JSON file (or in memory without a
    run folder). A settled suite stays settled: more finished cases cannot reopen it."""

    def __init__(self, path: Path | None, bases: Mapping[tuple[str, str], Outcomes]) -> None:
        self._file = None if path is None else SharedFile(path)
        self._bases = bases
        self._local: dict[str, dict[str, Any]] = {}
        self._settled: dict[str, Stop] = {}

    def record(
        self, suite: str, model: str, case: str, plan: Plan, outcomes: Sequence[bool]
    ) -> None:
        """A case of the suite finished with these valid outcomes (empty: an error case)."""
        assert plan.order is not None
        entry = [plan.order.position, [int(o) for o in outcomes]]
        key = self._key(suite, model, plan)
        if self._file is None:
            self._local.setdefault(key, {})[case] = entry
            return
        with self._file.update() as box:
            document = box.data or {}
            document.setdefault(key, {})[case] = entry
            box.data = document

    def settled(self, suite: str, model: str, plan: Plan) -> Stop | None:
        """The suite's stop once its verdict (and its regression against the baseline, if any)
        cannot change any more; None while it may."""
        assert plan.order is not None
        key = self._key(suite, model, plan)
        if key in self._settled:
            return self._settled[key]
        if self._file is None:
            cases = self._local.get(key, {})
        else:
            with self._file.update() as box:
                cases = dict((box.data or {}).get(key, {}))
        rule = SuiteRule(
            plan.order.cases, plan.samples, plan.pass_rate, plan.confidence,
            cast(Mode, plan.mode), cast(Population, plan.population),
        )  # fmt: skip
        finished = {case: tuple(bool(o) for o in outcomes) for case, (_, outcomes) in cases.items()}
        stop = decide(rule, {cases[case][0]: outcomes for case, outcomes in finished.items()})
        if stop.verdict is None:
            return None
        base = self._bases.get((suite, model))
        if base and not regression_settled(base, finished, 1.0 - plan.confidence):
            return None
        self._settled[key] = stop
        return stop

    @staticmethod
    def _key(suite: str, model: str, plan: Plan) -> str:
        assert plan.order is not None
        return f"{suite} [{model}] {plan.order.collection}"
