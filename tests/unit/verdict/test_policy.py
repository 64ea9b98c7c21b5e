"""The pass/fail policy without pytest: fail-on decisions, messages, the baseline gate's rule."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import openai
import pytest

from pytest_llmeval.errors import call_errors
from pytest_llmeval.verdict.marker import Plan
from pytest_llmeval.verdict.policy import (
    FAIL_ON,
    failure_message,
    interruption,
    junit_properties,
    outcome,
    regression_gate,
    row_name,
)
from pytest_llmeval.verdict.sampling import Classifier, Sampled, run_sync

CLASSIFIER = Classifier(call_errors(), redact=lambda text: text.replace("sk-secret", "***"))
HERE = Path(__file__)


def sampled(script: str, plan: Plan) -> Sampled:
    """Real samples of a body that passes (P), fails (F) or errors (E) as the script says."""
    counter = itertools.count()
    lock = threading.Lock()

    def body() -> None:
        with lock:
            step = script[next(counter) % len(script)]
        if step == "F":
            raise AssertionError("wrong answer from sk-secret")
        if step == "E":
            raise openai.APIConnectionError(request=None)  # type: ignore[arg-type]

    return run_sync(plan, body, 1, CLASSIFIER)


PLAN = Plan(pass_rate=0.8, samples=10, confidence=0.95, mode="not_worse")
REGRESSED = "llmeval: regression vs baseline: 10/10 -> 2/10"


@pytest.mark.parametrize("fail_on", FAIL_ON)
def test_a_passing_test_fails_only_on_a_regression_that_counts(fail_on: str) -> None:
    run = sampled("P", PLAN)
    assert run.verdict == "passed"
    assert outcome(run, None, None, fail_on, has_baseline=True).failed is False
    regressed = outcome(run, None, REGRESSED, fail_on, has_baseline=True)
    assert regressed.failed is (fail_on != "threshold")
    if regressed.failed:
        assert regressed.message == REGRESSED


@pytest.mark.parametrize(
    ("fail_on", "has_baseline", "fails"),
    [
        ("both", False, True),
        ("both", True, True),
        ("threshold", True, True),
        ("regression", True, False),  # reported, but only regressions fail under this gate
    ],
)
def test_a_missed_threshold_fails_unless_only_regressions_count(
    fail_on: str, has_baseline: bool, fails: bool
) -> None:
    run = sampled("F", PLAN)
    assert run.verdict == "failed"
    message = failure_message(run, CLASSIFIER, HERE)
    decided = outcome(run, message, None, fail_on, has_baseline)
    assert decided.failed is fails
    assert decided.reraise is None
    if fails:
        assert decided.message == message


def test_a_regression_and_a_missed_threshold_say_both() -> None:
    run = sampled("F", PLAN)
    message = failure_message(run, CLASSIFIER, HERE)
    decided = outcome(run, message, REGRESSED, "both", has_baseline=True)
    assert decided.message == f"{REGRESSED}\n{message}"


def test_an_unmarked_test_reraises_what_its_sample_raised() -> None:
    unmarked = Plan(pass_rate=1.0, samples=1, confidence=0.95, mode="observed", marked=False)
    decided = outcome(sampled("F", unmarked), "ignored", None, "both", has_baseline=False)
    assert decided.failed and isinstance(decided.reraise, AssertionError)


def test_the_failure_message_gives_counts_interval_and_the_first_failure_redacted() -> None:
    run = sampled("PF", PLAN)
    message = failure_message(run, CLASSIFIER, HERE)
    assert message is not None
    first, design, second, third = message.splitlines()
    assert first.startswith(f"llmeval: {run.passes}/{run.passes + run.failures} samples passed")
    assert "pass_rate 0.80 [not_worse] not met; 0 errors" in first
    assert design.startswith(f"sequential, max {PLAN.samples}, expected ")
    assert "; stopped after " in design and "<= fail bound" in design
    assert second == "first failure: AssertionError: wrong answer from ***"
    assert third.startswith(f"  at {HERE.name}:") and "raise AssertionError" in third
    assert failure_message(sampled("P", PLAN), CLASSIFIER, HERE) is None


def test_the_error_message_says_how_many_valid_samples_a_verdict_needs() -> None:
    run = sampled("E", PLAN)
    assert run.verdict == "error"
    message = failure_message(run, CLASSIFIER, HERE)
    assert message is not None
    assert message.startswith("llmeval: only 0 of ")
    assert "are needed for a verdict" in message
    assert "\nfirst error: openai.APIConnectionError: Connection error." in message


def test_a_baseline_row_gates_sampling_except_under_replay() -> None:
    base = {"passed": 10, "failed": 0}
    rule = regression_gate(base, PLAN, replaying=False)
    assert rule is not None
    assert rule(0, 3, 7) is None  # 0/3 so far: the verdict can still go either way
    assert rule(10, 10, 0) == "settled"
    assert regression_gate(base, PLAN, replaying=True) is None
    futile = [rule(t, t, 10 - t) for t in range(1, 10)]
    assert "futile" in futile  # 10/10 then: a drop is unlikely to show by sample 10
    writing = regression_gate(base, PLAN, replaying=False, futile=False)
    assert writing is not None
    assert [writing(t, t, 10 - t) for t in range(1, 10)] == [
        None if stop == "futile" else stop for stop in futile
    ]
    assert regression_gate(None, PLAN, replaying=False) is None


def test_a_test_cut_short_is_interrupted_or_an_error_of_what_stopped_it() -> None:
    assert interruption(4, True, None, "") == (
        "interrupted",
        "llmeval: interrupted after 4 samples",
    )
    assert interruption(2, False, "pytest-timeout", "Timeout >1.0s") == (
        "error",
        "llmeval: pytest-timeout stopped the test after 2 samples: Timeout >1.0s",
    )
    assert interruption(2, False, None, "skipped") is None


def test_junit_properties_carry_rate_interval_and_regression() -> None:
    result = {"ci": (0.5, 0.9), "passed": 7, "failed": 1, "samples": [{}] * 9, "verdict": "passed"}
    regression = {"p_value": 0.0123, "regressed": False, "prompt_changed": True}
    assert dict(junit_properties(result, regression)) == {
        "llmeval_pass_rate": "0.8750",
        "llmeval_ci": "0.5000-0.9000",
        "llmeval_samples": "8/9",
        "llmeval_verdict": "passed",
        "llmeval_regression_p": "0.0123",
        "llmeval_regressed": "false",
        "llmeval_prompt_changed": "true",
    }
    assert len(junit_properties({**result, "passed": 0, "failed": 0}, None)) == 4


@pytest.mark.parametrize(
    ("ident", "name"),
    [("gpt-4o", "t.py::test_a"), ("3-gpt-4o", "t.py::test_a[3]"), ("gpt-4o-x", "t.py::test_a[x]")],
)
def test_rows_group_by_test_without_the_model_part(ident: str, name: str) -> None:
    assert row_name(f"t.py::test_a[{ident}]", ident, "gpt-4o") == name
