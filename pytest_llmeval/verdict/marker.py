"""The `llmeval` marker: its arguments, validated once, resolved per model."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from pytest_llmeval.config import APIS, DESIGNS, Settings
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.verdict.sequential import (
    Design,
    curtailed,
    design_for,
    expected_samples,
    falls_back,
)
from pytest_llmeval.verdict.stats import MODES, Mode, pass_threshold
from pytest_llmeval.verdict.suite import POPULATIONS

if TYPE_CHECKING:
    from pytest_llmeval.report.schema import PlanInfo

DEFAULT_WILDCARD = "*"
_KWARGS = (
    "pass_rate", "samples", "confidence", "mode", "models", "api", "suite", "population",
    "judge", "design",
)  # fmt: skip


@dataclass(frozen=True)
class EvalSpec:
    """What a test asks for: a pass rate over samples, judged at a confidence."""

    pass_rate: float | Mapping[str, float] = 1.0
    samples: int | None = None
    confidence: float = 0.95
    mode: str = "not_worse"
    models: tuple[str, ...] | None = None
    api: str | None = None
    marked: bool = True
    suite: bool = False
    population: str = "fixed"
    judge: str | None = None  # this test's judge model, instead of the run's
    design: str | None = None  # None: the config's `design` (a suite's: run every case)

    def resolve(
        self,
        model: str,
        default_samples: int,
        samples_override: int | None,
        default_design: str = "sequential",
    ) -> Plan:
        """The concrete plan for one model; the marker was validated, so lookups succeed."""
        rate = self.pass_rate
        if isinstance(rate, Mapping):
            rate = rate[model] if model in rate else rate[DEFAULT_WILDCARD]
        if not self.marked:
            samples = 1
        elif samples_override is not None:
            samples = samples_override
        else:
            samples = self.samples or default_samples
        design = self.design or ("fixed" if self.suite else default_design)
        return Plan(
            float(rate), samples, self.confidence, self.mode, self.marked,
            self.suite, self.population, design=design,
        )  # fmt: skip

    def mentioned_models(self) -> set[str]:
        """Model names the marker refers to, for checking them against the config."""
        names = set(self.models or ())
        if self.judge is not None:
            names.add(self.judge)
        if isinstance(self.pass_rate, Mapping):
            names.update(k for k in self.pass_rate if k != DEFAULT_WILDCARD)
        return names


UNMARKED = EvalSpec(marked=False)


def design_text(plan: PlanInfo) -> str | None:
    """How a not_worse or proven verdict stops, and what it spends on average at the threshold:
    "sequential, max 30, expected 13.9 at p = 0.80"."""
    design = plan.get("design")
    if design is None:
        return None
    kind = "sequential" if design == "sequential" else "fixed-N (curtailed)"
    text = f"{kind}, max {plan['samples']}"
    expected = plan.get("expected_samples")
    if expected is not None:
        text += f", expected {expected:g} at p = {plan['pass_rate']:.2f}"
    return text


@dataclass(frozen=True)
class CaseOrder:
    """A case of a sequential suite: its place in the canonical order of the suite's `cases`
    collected cases, and a key of that collection (shards collect different ones)."""

    position: int
    cases: int
    collection: str


@dataclass(frozen=True)
class Plan:
    """One test x model: what to sample and how to judge it."""

    pass_rate: float
    samples: int
    confidence: float
    mode: str
    marked: bool = True
    suite: bool = False  # the threshold is the suite's: every sample runs, the case observes
    population: str = "fixed"
    judged: bool = False  # graded by the judge: every sample runs, the verdict may be corrected
    paired: bool = False  # runs on a pair of models (`llm_rival`): not a case of a suite
    design: str = "sequential"
    order: CaseOrder | None = None  # a case of a sequential suite

    @property
    def stops_suite(self) -> bool:
        """A case of a suite that stops over its cases once its verdict is settled."""
        return self.suite and self.design == "sequential" and self.mode in ("not_worse", "proven")

    @property
    def sequential(self) -> bool:
        """Stopped by a sequential design: a marked not_worse or proven test whose samples need
        not all run (a suite's case and a judged test run them all), and whose design is not
        the fixed-N test's (what `design_for` falls back to, at a pass rate of 1 say)."""
        return (
            self.design == "sequential"
            and self.marked
            and self.mode in ("not_worse", "proven")
            and not (self.suite or self.judged)
            and not falls_back(self.samples, self.pass_rate, self.confidence, cast(Mode, self.mode))
        )

    def stopping(self) -> Design:
        """The design that stops this plan: the sequential one, else fixed-N with curtailment."""
        if self.sequential:
            return design_for(self.samples, self.pass_rate, self.confidence, cast(Mode, self.mode))
        mode = cast(Mode, self.mode)
        return curtailed(
            self.samples, pass_threshold(self.samples, self.pass_rate, self.confidence, mode) - 1
        )

    def width(self, concurrency: int) -> int:
        """Samples of this test in flight at once. A sequential test keeps about a quarter of
        its expected samples in flight: more would run past its stop (overshoot), and the
        shared window fills with other tests' samples instead."""
        width = max(1, min(concurrency, self.samples))
        if self.sequential:
            width = min(width, max(2, math.ceil(self.expected() / 4)))
        return width

    def cost(self) -> int:
        """What a run-ahead job of this plan counts against the lookahead: its expected samples
        when it is sequential, else all of them."""
        return math.ceil(self.expected()) if self.sequential else self.samples

    def expected(self) -> float:
        """Mean samples spent at true rate = pass_rate."""
        return expected_samples(self.stopping(), self.pass_rate)

    def to_dict(self) -> PlanInfo:
        info: PlanInfo = {
            "pass_rate": self.pass_rate,
            "samples": self.samples,
            "confidence": self.confidence,
            "mode": self.mode,
            "marked": self.marked,
        }
        if self.suite:
            info["suite"] = True
            info["population"] = self.population
        if self.order is not None:
            order = self.order
            info["order"] = {
                "position": order.position, "cases": order.cases, "collection": order.collection
            }  # fmt: skip
        if self.judged:
            info["judged"] = True
        if self.paired:
            info["paired"] = True
        if self.marked and self.mode in ("not_worse", "proven") and not (self.suite or self.judged):
            info["design"] = "sequential" if self.sequential else "fixed"
            info["expected_samples"] = self.expected()
        return info


def parse_marker(args: Sequence[Any], kwargs: Mapping[str, Any], where: str) -> EvalSpec:
    """Validate marker arguments, raising ConfigError that names the test and the key."""
    prefix = f"{where}: llmeval marker"
    if args:
        raise ConfigError(f"{prefix}: takes keyword arguments only ({', '.join(_KWARGS)})")
    for key in kwargs:
        if key not in _KWARGS:
            raise ConfigError(f"{prefix}: unknown argument {key!r} (known: {', '.join(_KWARGS)})")
    pass_rate = kwargs.get("pass_rate", 1.0)
    if isinstance(pass_rate, Mapping):
        if not pass_rate:
            raise ConfigError(f"{prefix}: pass_rate dict is empty")
        rates = {str(k): _rate(v, f"{prefix}: pass_rate[{k!r}]") for k, v in pass_rate.items()}
        pass_rate = rates
    else:
        pass_rate = _rate(pass_rate, f"{prefix}: pass_rate")
    samples = kwargs.get("samples")
    if samples is not None and (
        isinstance(samples, bool) or not isinstance(samples, int) or samples < 1
    ):
        raise ConfigError(f"{prefix}: samples={samples!r} must be an integer >= 1")
    confidence = kwargs.get("confidence", 0.95)
    if not _is_number(confidence) or not 0 < confidence < 1:
        raise ConfigError(f"{prefix}: confidence={confidence!r} must be strictly between 0 and 1")
    mode = kwargs.get("mode", "not_worse")
    if mode not in MODES:
        raise ConfigError(f"{prefix}: mode={mode!r} must be one of {', '.join(MODES)}")
    models = kwargs.get("models")
    if models is not None:
        if isinstance(models, str):
            models = [models]
        if not isinstance(models, Sequence) or not all(isinstance(m, str) and m for m in models):
            raise ConfigError(f"{prefix}: models={models!r} must be a list of model names")
        models = tuple(models)
    api = kwargs.get("api")
    if api is not None and api not in APIS:
        raise ConfigError(f"{prefix}: api={api!r} must be one of {', '.join(APIS)}")
    suite = kwargs.get("suite", False)
    if not isinstance(suite, bool):
        raise ConfigError(f"{prefix}: suite={suite!r} must be True or False")
    population = kwargs.get("population", "fixed")
    if population not in POPULATIONS:
        raise ConfigError(
            f"{prefix}: population={population!r} must be one of {', '.join(POPULATIONS)}"
        )
    if "population" in kwargs and not suite:
        raise ConfigError(f"{prefix}: population= is about a suite gate; add suite=True")
    judge = kwargs.get("judge")
    if judge is not None and (not isinstance(judge, str) or not judge):
        raise ConfigError(f"{prefix}: judge={judge!r} must be a model name")
    design = kwargs.get("design")
    if design is not None and design not in DESIGNS:
        raise ConfigError(f"{prefix}: design={design!r} must be one of {', '.join(DESIGNS)}")
    if suite and design == "sequential" and mode == "observed":
        raise ConfigError(
            f"{prefix}: an observed suite needs every case and never stops; drop "
            "design='sequential' or use mode='not_worse' or 'proven'"
        )
    return EvalSpec(
        pass_rate, samples, float(confidence), mode, models, api, True, suite, population, judge,
        design,
    )  # fmt: skip


def check_models(spec: EvalSpec, known: set[str], where: str) -> None:
    """Reject marker model names that the run can never have (typos)."""
    unknown = sorted(spec.mentioned_models() - known)
    if unknown:
        raise ConfigError(
            f"{where}: llmeval marker names unknown model(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(known)) or '(none)'}"
        )


def check_rate_covers(spec: EvalSpec, model: str, where: str) -> None:
    """A per-model pass_rate dict must cover every model the test runs on."""
    rate = spec.pass_rate
    if isinstance(rate, Mapping) and model not in rate and DEFAULT_WILDCARD not in rate:
        raise ConfigError(
            f"{where}: llmeval marker pass_rate has no entry for model {model!r}; "
            f"add it or a {DEFAULT_WILDCARD!r} default"
        )


def models_for(spec: EvalSpec, settings: Settings, where: str) -> list[str]:
    """The run's models that a test runs on: those its marker's `models` and `api` admit."""
    if settings.models:
        check_models(spec, set(settings.models), where)
    names = [
        m
        for m in settings.selected
        if (spec.models is None or m in spec.models)
        and (spec.api is None or settings.model(m).api == spec.api)
    ]
    for name in names:
        check_rate_covers(spec, name, where)
    return names


def check_plan(plan: Plan, where: str) -> str | None:
    """Reject a `proven` plan that can never pass; return a warning for a gate that never fails."""
    n = plan.samples
    if plan.suite:
        return None  # judged over the cases, whose number is not known here
    if plan.mode == "proven" and pass_threshold(n, plan.pass_rate, plan.confidence, "proven") > n:
        needed = next(
            (
                m
                for m in range(n + 1, 10_001)
                if pass_threshold(m, plan.pass_rate, plan.confidence, "proven") <= m
            ),
            None,
        )
        hint = f"use samples >= {needed}" if needed else "lower pass_rate or confidence"
        raise ConfigError(
            f"{where}: llmeval marker mode='proven' can never pass with samples={n} at "
            f"pass_rate={plan.pass_rate} and confidence={plan.confidence}; {hint}"
        )
    never_fails = pass_threshold(n, plan.pass_rate, plan.confidence, "not_worse") == 0
    if plan.mode == "not_worse" and plan.marked and plan.pass_rate > 0 and never_fails:
        return (
            f"{where}: llmeval marker can never fail with samples={n} at pass_rate="
            f"{plan.pass_rate} (mode='not_worse'); use more samples for a real gate"
        )
    return None


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _rate(value: Any, where: str) -> float:
    if not _is_number(value) or not 0 <= value <= 1:
        raise ConfigError(f"{where}={value!r} must be a number in [0, 1]")
    return float(value)
