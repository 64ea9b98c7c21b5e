"""What a test's samples come to in pytest: the baseline gate's stopping rule, the fail-on
decision, the messages a failed test shows, and its JUnit properties."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_llmeval.verdict.futility import Gate
from pytest_llmeval.verdict.marker import design_text
from pytest_llmeval.verdict.stats import min_valid_samples

if TYPE_CHECKING:
    from pytest_llmeval.report.schema import JudgedVerdict, Result, Row, RowComparison
    from pytest_llmeval.verdict.marker import Plan
    from pytest_llmeval.verdict.sampling import Classifier, Sampled

FAIL_ON = ("both", "regression", "threshold")


def regression_gate(
    base: Row | None, plan: Plan, replaying: bool, futile: bool = True
) -> Gate | None:
    """Sample until the regression verdict against the baseline row is settled too, or (with
    `futile`) a drop has become unlikely to show.

    Not under replay, which must ask for no more samples than the run that recorded them (it
    may have had no baseline yet). A run that writes the baseline passes futile=False: its rows
    become the next baseline, and a row cut short by futility would weaken every later gate.
    """
    if base is None or replaying or plan.suite:
        return None
    base_valid = base["passed"] + base["failed"]
    least = min_valid_samples(plan.samples)
    return Gate(base["passed"], base_valid, 1.0 - plan.confidence, least, plan.samples, futile)


@dataclass(frozen=True)
class Outcome:
    """How pytest shows a sampled test: passed, failed with `message`, or re-raise the first
    exception of an unmarked test (its own traceback is the clearest message)."""

    failed: bool
    message: str | None = None
    reraise: BaseException | None = None


def outcome(
    sampled: Sampled, message: str | None, regression: str | None, fail_on: str, has_baseline: bool
) -> Outcome:
    """The fail-on policy: a significant regression (its message) fails unless only thresholds
    count; a missed threshold fails unless only regressions count; an unmarked test re-raises
    what its one sample raised. A suite's case only observes: the suite's gate judges it, over
    every case, once they have all run."""
    if sampled.plan.suite and sampled.verdict != "error":
        return Outcome(False)
    if regression is not None and fail_on != "threshold":
        return Outcome(True, "\n".join(filter(None, [regression, message])))
    if has_baseline and fail_on == "regression" and sampled.verdict == "failed":
        return Outcome(False)
    if sampled.verdict == "passed":
        return Outcome(False)
    first = sampled.first_failure or sampled.first_error
    return Outcome(True, message or "", reraise=None if sampled.plan.marked else first)


def interruption(
    samples: int, interrupt: bool, stopped_by: str | None, reason: str
) -> tuple[str, str] | None:
    """Verdict and message of a test cut short after `samples`: by Ctrl-C (`interrupt`) or by
    the machinery named `stopped_by` (e.g. another plugin's timeout, saying `reason`); None when
    the test's own outcome stands (a skip, an xfail, a usage error)."""
    if interrupt:
        return "interrupted", f"llmeval: interrupted after {samples} samples"
    if stopped_by is not None:
        return "error", f"llmeval: {stopped_by} stopped the test after {samples} samples: {reason}"
    return None


def failure_message(sampled: Sampled, classifier: Classifier, test_file: Path) -> str | None:
    """Why the test failed or erred: the counts, the interval, and the first failure or error."""
    if sampled.verdict == "passed":
        return None
    plan = sampled.plan
    valid = sampled.passes + sampled.failures
    run = len(sampled.records)
    judged = sampled.judged
    if judged is not None and judged["about"] == "true_rate":
        text = _corrected_message(sampled, judged)
    elif sampled.verdict == "error":
        text = (
            f"llmeval: only {valid} of {run} samples were valid ({sampled.errors} errors); "
            f"at least {min_valid_samples(plan.samples)} of {plan.samples} are needed for a verdict"
        )
    else:
        lo, hi = sampled.interval
        rate = f"{sampled.passes / valid:.1%}" if valid else "no valid samples"
        text = (
            f"llmeval: {sampled.passes}/{valid} samples passed ({rate}, "
            f"{plan.confidence:.0%} CI {lo:.1%}-{hi:.1%}), pass_rate {plan.pass_rate:.2f} "
            f"[{plan.mode}] not met; {sampled.errors} errors; {run} of {plan.samples} samples run"
        )
    if judged is not None and judged["about"] == "judged_rate":
        text += f"\njudged by {judged['judge']!r}: {judged['note']}"
    if sampled.decision is not None:
        design = design_text(plan.to_dict())
        text += f"\n{design}; stopped after {sampled.decision['at']}: {sampled.decision['why']}"
    first = sampled.first_failure if sampled.verdict == "failed" else sampled.first_error
    if first is not None:
        kind = "failure" if sampled.verdict == "failed" else "error"
        text += f"\nfirst {kind}: {describe(first, classifier, test_file)}"
    return text


def _corrected_message(sampled: Sampled, judged: JudgedVerdict) -> str:
    """A judged verdict about the true rate: raw and corrected rates, or why none is possible."""
    plan = sampled.plan
    valid = sampled.passes + sampled.failures
    if sampled.verdict == "error" or judged["ci"] is None:
        return f"llmeval: judged by {judged['judge']!r}: {judged['note']}"
    lo, hi = judged["ci"]
    corrected = judged["corrected_rate"]
    return (
        f"llmeval: the judge {judged['judge']!r} passed {sampled.passes}/{valid} samples; "
        f"corrected for its measured error the true pass rate is "
        f"{'n/a' if corrected is None else f'{corrected:.1%}'} "
        f"({plan.confidence:.0%} CI {lo:.1%}-{hi:.1%}), pass_rate {plan.pass_rate:.2f} "
        f"[{plan.mode}] not met"
    )


def describe(exc: BaseException, classifier: Classifier, test_file: Path) -> str:
    """The exception in one line (secrets redacted), who raised it if not the test, and the
    line of the test file it came through."""
    text = "".join(traceback.format_exception_only(exc)).strip()
    origin = classifier.harness(exc)
    if origin is not None:
        text += f" (raised by {origin}, not by the test's checks)"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == test_file]
    if frames:
        text += f"\n  at {test_file.name}:{frames[-1].lineno}: {frames[-1].line}"
    return classifier.redact(text)


def junit_properties(result: Result, regression: RowComparison | None) -> list[tuple[str, str]]:
    """Pass rate, interval, samples and verdict (and the regression test) as JUnit properties."""
    lo, hi = result["ci"]
    valid = result["passed"] + result["failed"]
    rate = result["passed"] / valid if valid else None
    properties = [
        ("llmeval_pass_rate", "" if rate is None else f"{rate:.4f}"),
        ("llmeval_ci", f"{lo:.4f}-{hi:.4f}"),
        ("llmeval_samples", f"{valid}/{len(result['samples'])}"),
        ("llmeval_verdict", result["verdict"]),
    ]
    if regression is not None:
        properties += [
            ("llmeval_regression_p", f"{regression['p_value']:.4g}"),
            ("llmeval_regressed", str(regression["regressed"]).lower()),
            ("llmeval_prompt_changed", str(regression["prompt_changed"]).lower()),
        ]
    return properties


def row_name(nodeid: str, ident: str, model: str) -> str:
    """Node id without the model part of the parameter id, so rows group by test."""
    if ident == model:
        rest = ""
    elif ident.endswith("-" + model):
        rest = ident[: -len(model) - 1]
    elif ident.startswith(model + "-"):
        rest = ident[len(model) + 1 :]
    else:
        rest = ident
    base = nodeid.rsplit("[", 1)[0]
    return f"{base}[{rest}]" if rest else base
