"""The judged-verdict correction end to end: a model of known true pass rate and a ScriptedJudge
of known error rates behind the fake gateway, calibration and grading through the real Judge and
client, then `corrected_verdict`. Every prompt is unique and the judge's luck is keyed by the
prompt, so these runs are deterministic; `benchmarks/judge_coverage.py` measures the rates."""

from __future__ import annotations

import math
import random
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from pytest_llmeval.calls.client import LLM, ClientPool
from pytest_llmeval.config import ModelSettings, Settings
from pytest_llmeval.judging.calibration import Labelled, calibrate
from pytest_llmeval.judging.judge import Judge
from pytest_llmeval.judging.prompts import JudgePrompts
from pytest_llmeval.testing import FakeGateway, RecordedRequest, ScriptedJudge
from pytest_llmeval.verdict.judged import Calibration, corrected_verdict
from pytest_llmeval.verdict.stats import Mode, clopper_pearson

RUBRIC = "The answer is good."
ALPHA = 0.05
_PROMPT = re.compile(r"run (\d+) item (\d+)")


@dataclass(frozen=True)
class ModelUnderTest:
    """Truly good with probability p, drawn from an RNG keyed by the prompt."""

    p: float

    def __call__(self, request: RecordedRequest) -> str:
        found = _PROMPT.search(request.prompt)
        assert found is not None
        run, item = found.groups()
        good = random.Random(f"{self.p}:{run}:{item}").random() < self.p
        return f"{'GOOD' if good else 'BAD'} answer {run}/{item}"


def truly_good(output: str, rubric: str) -> bool:
    return output.startswith("GOOD")


def connect(gateway: FakeGateway, p: float, se: float, sp: float) -> tuple[LLM, Judge]:
    gateway.add_model("model", ModelUnderTest(p))
    gateway.add_model("judge", ScriptedJudge(truly_good, sensitivity=se, specificity=sp, seed=3))
    pool = ClientPool(Settings(retries=0, timeout=10.0), {})
    model = LLM(ModelSettings(name="model", model_id="model"), pool, gateway.base_url)
    judge_llm = LLM(
        ModelSettings(name="judge", model_id="judge"), pool, gateway.base_url, role="judge"
    )
    return model, Judge(judge_llm, JudgePrompts())


def sample(model: LLM, judge: Judge, run: int, n: int) -> list[tuple[bool, bool]]:
    """(truly good, judged pass) for n fresh outputs of the model."""

    def one(item: int) -> tuple[bool, bool]:
        output = model.chat(f"run {run} item {item}").text
        return truly_good(output, RUBRIC), judge(output, RUBRIC).passed

    with ThreadPoolExecutor(8) as threads:
        return list(threads.map(one, range(n)))


def calibration(judge: Judge, run: int, m: int) -> Calibration:
    items = [
        Labelled(str(i), RUBRIC, f"{'GOOD' if i % 2 else 'BAD'} labelled {run}/{i}", i % 2 == 1)
        for i in range(m)
    ]
    [figures] = calibrate(
        lambda item: judge(item.output, item.rubric).passed,
        items,
        judge=judge.name,
        judge_model_id=judge.llm.model.model_id,
        fingerprint=judge.fingerprint,
        set_name=f"labelled-{run}",
        runs=1,
        workers=8,
    )
    return figures.counts


def inside(k: int, n: int, rate: float, level: float) -> bool:
    lower, upper = clopper_pearson(k, n, level)
    return lower <= rate <= upper


@pytest.mark.parametrize(
    ("p", "se", "sp"),
    [(0.2, 0.95, 0.7), (0.8, 0.7, 0.95)],
    ids=["judge-too-lenient", "judge-too-strict"],
)
def test_the_interval_covers_the_true_rate_whenever_every_count_is_within_its_bounds(
    gateway: FakeGateway, p: float, se: float, sp: float
) -> None:
    # The union-bound proof, deterministically: if the judged passes, the calibration's true
    # positives and true negatives are each inside their Clopper-Pearson interval at the level
    # corrected_verdict uses, the corrected interval contains the true rate. The judged rate
    # (0.43 and 0.57) is far from the true one, so an interval about it would often miss.
    m, n = 60, 40
    q = p * se + (1 - p) * (1 - sp)
    model, judge = connect(gateway, p, se, sp)
    levels: dict[Mode, float] = {"observed": 1 - ALPHA / 3, "not_worse": 1 - 2 * ALPHA / 3}
    held = informative = 0
    for run in range(3):
        counts = calibration(judge, run, m)
        assert (counts.positives, counts.negatives) == (m // 2, m // 2)
        passes = sum(judged for _, judged in sample(model, judge, run, n))
        for mode, level in levels.items():
            result = corrected_verdict(passes, n, counts, p, 1 - ALPHA, mode)
            lower, upper = result.interval
            informative += result.verdict != "error"
            if (
                inside(passes, n, q, level)
                and inside(counts.true_pos, counts.positives, se, level)
                and inside(counts.true_neg, counts.negatives, sp, level)
            ):
                held += 1
                assert upper >= p, (mode, passes, counts, result)
                if mode == "observed":
                    assert lower <= p, (passes, counts, result)
                else:
                    assert result.verdict != "failed", (passes, counts, result)
    # Each check holds with probability >= 0.95: the implication above was not vacuous.
    assert held >= 3
    assert informative >= 3


def test_a_judge_that_passes_bad_outputs_inflates_the_judged_rate(gateway: FakeGateway) -> None:
    model, judge = connect(gateway, 0.6, 1.0, 0.8)
    graded = sample(model, judge, 0, 400)
    assert all(judged for truth, judged in graded if truth)  # sensitivity 1: no good one fails
    bad = sum(not truth for truth, _ in graded)
    false_pos = sum(judged and not truth for truth, judged in graded)
    # false_pos ~ Bin(bad, 0.2): within 5 sigma of its mean, which is 5 sigma above zero.
    sigma = math.sqrt(bad * 0.2 * 0.8)
    assert abs(false_pos - 0.2 * bad) <= 5 * sigma
    assert 0.2 * bad - 5 * sigma > 0
    passes, good = sum(judged for _, judged in graded), len(graded) - bad
    assert passes == good + false_pos > good
