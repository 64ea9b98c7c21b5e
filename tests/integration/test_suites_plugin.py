"""Benchmark suites through the plugin: suite rows per subject, McNemar, routing."""

from __future__ import annotations

import json

import pytest

from pytest_llmeval.testing import FakeGateway

# Eight questions answered B and two answered C, over two subjects.
QUESTIONS = "question,A,B,C,D,answer,subject\n" + "".join(
    f"Question {i}?,w,x,y,z,{'C' if i in (3, 7) else 'B'},{'algebra' if i < 5 else 'history'}\n"
    for i in range(10)
)
SUITE = """
import pytest
from pytest_llmeval import check_choice
from pytest_llmeval.datasets import load_mmlu
from pytest_llmeval.params import params

@pytest.mark.llmeval(pass_rate=0.5, samples=1, mode="observed")
@pytest.mark.parametrize("q", params(load_mmlu("questions.csv")))
def test_mmlu(llm, q):
    check_choice(llm.chat(q.question), q.answer)

def test_not_a_suite(llm):
    llm.chat("hi")
"""


def test_suite_rows_comparison_and_routing(
    pytester: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("always-b", "The answer is (B).")
    gateway.add_model("always-c", "C")
    pytester.makefile(
        ".toml",
        llmeval=f'base_url = "{gateway.base_url}"\nretries = 0\n'
        "[models.always-b]\ninput_cost_per_mtok = 1000.0\noutput_cost_per_mtok = 1000.0\n"
        "[models.always-c]\ninput_cost_per_mtok = 1.0\noutput_cost_per_mtok = 1.0\n",
    )
    pytester.path.joinpath("questions.csv").write_text(QUESTIONS)
    pytester.makepyfile(test_bench=SUITE)
    result = pytester.runpytest(
        "--llm-models=always-b,always-c", "--llm-report=report.json", *plugin_args
    )
    result.assert_outcomes(passed=12, failed=10)
    result.stdout.fnmatch_lines(
        [
            "suite*model*cases*passed*rate*95% CI*pass@1*err*cost/case",
            "test_bench.py::test_mmlu*always-b*10*8/10*80.0%*44-97%*80.0%*0*",
            "test_bench.py::test_mmlu*always-c*10*2/10*20.0%*3-56%*20.0%*0*",
            "test_bench.py::test_mmlu [[]always-b[]] by subject: algebra 4/5, history 4/5",
            "suite*model A*model B*cases*A rate*B rate*only A*only B*McNemar p",
            "test_bench.py::test_mmlu*always-b*always-c*10*80.0%*20.0%*8*2*0.1094*n.s.",
            "suite*best*best rate*route to*rate*cost/case*why",
            "test_bench.py::test_mmlu*always-b*80.0%*always-c*20.0%*"
            "cheapest not significantly below the best",
        ]
    )
    report = json.loads((pytester.path / "report.json").read_text())
    assert [(s["model"], s["passed"], s["total"]) for s in report["suites"]] == [
        ("always-b", 8, 10), ("always-c", 2, 10),
    ]  # fmt: skip
    assert report["suites"][1]["subjects"]["algebra"] == {
        "passed": 1, "total": 5, "rate": 0.2, "ci": pytest.approx([0.00505, 0.71642], abs=1e-4),
    }  # fmt: skip
    [pair] = report["comparisons"]
    assert pair["p_value"] == pytest.approx(112 / 1024)  # 2 * (1 + 10 + 45) / 2^10
    assert report["routing"][0]["recommended"] == "always-c"
    assert {s["suite"] for s in report["suites"]} == {"test_bench.py::test_mmlu"}


def test_a_subject_mark_without_one_string_fails_the_test(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("m", "B")
    suite.makepyfile(
        test_bad="""
import pytest

@pytest.mark.llmeval_subject()
def test_q(llm):
    llm.chat("hi")
"""
    )
    result = suite.runpytest("--llm-models=m")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*llmeval_subject takes one string, the subject*"])
    assert gateway.request_count() == 0
