"""LLM-as-judge through the plugin: judged verdicts over every sample, the judge's spend apart
from the model's, calibration and the corrected verdict, judge errors, cache, budget and
pairwise preferences, against ScriptedJudge on the fake gateway."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_llmeval.__main__ import main
from pytest_llmeval.testing import Cycle, FakeGateway, ScriptedJudge

RUBRIC = "The answer says that the refund was issued."
RIGHT = "Your refund was issued today."
WRONG = "We cannot find that order."

GRADED = f"""
import pytest

RUBRIC = {RUBRIC!r}

@pytest.mark.llmeval(pass_rate=0.8, samples=8)
def test_refund(llm, judge):
    answer = llm.chat("Where is my money?").text
    assert judge(answer, RUBRIC)
"""

PRICES = """
[models.good]
input_cost_per_mtok = 1.0
output_cost_per_mtok = 2.0

[models.weak]

[models.judge-x]
input_cost_per_mtok = 3.0
output_cost_per_mtok = 6.0
max_output_tokens = 20

[models.emb]
input_cost_per_mtok = 0.5

[models.coin]
"""


def says_refund(output: str, rubric: str) -> bool:
    """The scripted judge's truth: the output mentions a refund."""
    return "refund" in output.lower()


def configure(
    suite: pytest.Pytester, gateway: FakeGateway, top: str = "", models: str = PRICES
) -> None:
    """llmeval.toml at the fake gateway, with `top` keys and the declared `models`."""
    text = f'base_url = "{gateway.base_url}"\nretries = 0\n{top}\n{models}'
    suite.makefile(".toml", llmeval=text)


def report(suite: pytest.Pytester, name: str = "r.json") -> dict[str, Any]:
    return dict(json.loads((suite.path / name).read_text()))


def rows(suite: pytest.Pytester, name: str = "r.json") -> dict[str, dict[str, Any]]:
    return {row["nodeid"]: row for row in report(suite, name)["tests"]}


def by_role(sample: dict[str, Any], role: str | None) -> list[dict[str, Any]]:
    return [call for call in sample["calls"] if call.get("role") == role]


def priced(call: dict[str, Any], per_mtok_in: float, per_mtok_out: float) -> float:
    return float(call["input_tokens"] * per_mtok_in + call["output_tokens"] * per_mtok_out) / 1e6


def test_a_judged_test_runs_every_sample_and_counts_the_judge_apart(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("good", RIGHT)
    gateway.add_model("weak", WRONG)
    gateway.add_model("judge-x", ScriptedJudge(says_refund))
    configure(suite, gateway, 'judge = "judge-x"')
    suite.makepyfile(test_graded=GRADED)
    args = ("--llm-models=good,weak", "--llm-report=r.json", "--llm-report-md=r.md")
    result = suite.runpytest(*args, *plugin_args)
    result.assert_outcomes(passed=1, failed=1)
    assert gateway.request_count("judge-x") == 16
    found = report(suite)
    good, weak = (
        rows(suite)["test_graded.py::test_refund[good]"],
        rows(suite)["test_graded.py::test_refund[weak]"],
    )
    assert (good["verdict"], weak["verdict"]) == ("passed", "failed")
    for row in (good, weak):
        # 0/2 would already settle a not_worse 0.8 gate; a judged test runs all its samples.
        assert row["plan"]["judged"] is True
        assert row["run"] == 8 and row["stop_reason"] == "completed"
        assert {j["rubric"] for s in row["samples"] for j in s["judgements"]} == {
            row["judged"]["rubric"]
        }
    assert (good["passed"], weak["failed"]) == (8, 8)
    for sample in good["samples"]:
        (grade,) = sample["judgements"]
        assert grade["kind"] == "grade" and grade["judge"] == "judge-x" and grade["passed"]
        assert grade["reason"] == "The output meets the rubric."
        (own,), (asked,) = by_role(sample, None), by_role(sample, "judge")
        role = sample["roles"]["judge"]
        assert role["calls"] == 1 and role["input_tokens"] == asked["input_tokens"] > 50
        assert role["cost_usd"] == pytest.approx(priced(asked, 3.0, 6.0))
        # The model's own tokens and cost leave the judge's out.
        assert sample["input_tokens"] == own["input_tokens"] < asked["input_tokens"]
        assert sample["cost_usd"] == pytest.approx(priced(own, 1.0, 2.0))
    judge_usd = sum(s["roles"]["judge"]["cost_usd"] for s in good["samples"])
    totals = found["totals"]["good"]
    assert totals["roles"]["judge"]["calls"] == 8
    assert totals["roles"]["judge"]["cost_usd"] == pytest.approx(judge_usd)
    assert totals["cost_usd"] == pytest.approx(sum(s["cost_usd"] for s in good["samples"]))
    assert found["totals"]["weak"]["cost_usd"] is None  # unpriced model, priced judge
    assert found["totals"]["weak"]["roles"]["judge"]["cost_usd"] > 0
    assert good["judged"]["about"] == weak["judged"]["about"] == "judged_rate"
    assert (good["judged"]["judged_rate"], weak["judged"]["judged_rate"]) == (1.0, 0.0)
    assert good["judged"]["corrected_rate"] is None and good["judged"]["calibration"] is None
    assert "judge-calibrate" in good["judged"]["note"]
    assert "llmeval-calibration.json" in good["judged"]["note"]
    lines = result.stdout.lines
    assert any(line.startswith("test ") and line.endswith("judge $") for line in lines)
    result.stdout.fnmatch_lines(
        [
            f"test_graded.py::test_refund  good *PASSED *all 8 * {judge_usd:.4f}",
            "judged test *model *judge *judged rate *true rate *CI *verdict about",
            "test_graded.py::test_refund  good *judge-x *100.0% *- *- *judged rate",
            "test_graded.py::test_refund  weak *judge-x *0.0% *- *- *judged rate",
            "test_graded.py::test_refund: no calibration of judge 'judge-x' for this rubric * "
            "calibrate with `python -m pytest_llmeval judge-calibrate`",
        ]
    )
    result.stdout.fnmatch_lines(["*judged by 'judge-x': no calibration of judge*"])
    md = (suite.path / "r.md").read_text()
    assert "### Judged verdicts" in md
    assert (
        "| `test_graded.py::test_refund` | good | judge-x | 100% | - | - | "
        "judged rate (not calibrated) |"
    ) in md
    assert "| model | samples | cached | spent | judge spent | saved | p50 s |" in md
    assert f"| good | 8 | 0 | ${totals['cost_usd']:.4f} | ${judge_usd:.4f} |" in md


def test_without_a_judge_the_test_errors_and_names_the_option(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("good", RIGHT)
    gateway.add_model("judge-x", ScriptedJudge(says_refund))
    configure(suite, gateway)
    suite.makepyfile(test_graded=GRADED)
    result = suite.runpytest("--llm-models=good", "--llm-report=r.json")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_graded.py::test_refund[[]good[]] uses the judge fixture, but no judge model "
            "is configured: pass --llm-judge=NAME, *"
        ]
    )
    (row,) = rows(suite).values()
    assert row["verdict"] == "error" and row["stop_reason"] == "setup error"
    assert gateway.request_count() == 0
    chosen = suite.runpytest("--llm-models=good", "--llm-judge=judge-x")
    chosen.assert_outcomes(passed=1)
    assert gateway.request_count("judge-x") == 8


def test_the_marker_chooses_its_own_judge_among_declared_models(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("good", RIGHT)
    gateway.add_model("judge-x", ScriptedJudge(says_refund))
    gateway.add_model("coin", ScriptedJudge(lambda output, rubric: False))  # fails everything
    configure(suite, gateway, 'judge = "judge-x"')
    strict = GRADED.replace("samples=8)", 'samples=8, judge="coin")')
    suite.makepyfile(test_graded=GRADED, test_strict=strict.replace("test_refund", "test_other"))
    result = suite.runpytest("--llm-models=good", "--llm-report=r.json")
    result.assert_outcomes(passed=1, failed=1)
    found = rows(suite)
    assert found["test_graded.py::test_refund[good]"]["judged"]["judge"] == "judge-x"
    assert found["test_strict.py::test_other[good]"]["judged"]["judge"] == "coin"
    assert gateway.request_count("judge-x") == gateway.request_count("coin") == 8

    unknown = suite.runpytest("--llm-models=good", "--llm-judge=nobody")
    assert unknown.ret == pytest.ExitCode.USAGE_ERROR
    unknown.stderr.fnmatch_lines(["*--llm-judge: unknown model 'nobody'; declare it in *"])
    suite.makepyfile(test_strict=strict.replace('judge="coin"', 'judge="nobody"'))
    typo = suite.runpytest("--llm-models=good")
    assert typo.ret != pytest.ExitCode.OK
    typo.stdout.fnmatch_lines(["*llmeval marker names unknown model(s) 'nobody'*"])


def labelled(suite: pytest.Pytester) -> str:
    """30 outputs a human passed and 30 failed; the judge's truth passes 3 of the failed ones
    ("refund denied" mentions a refund), so its error on this set is known: Se 30/30, Sp 27/30."""
    items = [(f"Your refund for order {i} was issued.", "pass") for i in range(30)]
    items += [(f"We cannot find order {i}.", "fail") for i in range(27)]
    items += [(f"Order {i}: refund denied.", "fail") for i in range(3)]
    lines = ["// support answers, labelled by hand"]
    lines += [
        json.dumps({"id": f"a{n}", "rubric": RUBRIC, "output": output, "label": label})
        for n, (output, label) in enumerate(items)
    ]
    (suite.path / "labels.jsonl").write_text("\n".join(lines) + "\n")
    return "labels.jsonl"


def test_a_calibrated_judge_corrects_the_verdict_to_the_true_rate(
    suite: pytest.Pytester,
    gateway: FakeGateway,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway.add_model("judge-x", ScriptedJudge(says_refund))
    gateway.add_model("coin", ScriptedJudge(says_refund, sensitivity=0.5, specificity=0.5))
    gateway.add_model("good", RIGHT)
    gateway.add_model("weak", Cycle([RIGHT, WRONG, WRONG, WRONG]))  # truly passes 1 in 4
    configure(suite, gateway, 'judge = "judge-x"')
    monkeypatch.chdir(suite.path)
    command = ["judge-calibrate", labelled(suite), "--runs", "2", "--base-url", gateway.base_url]
    assert main(command) == 0
    printed = capsys.readouterr().out.splitlines()
    assert gateway.request_count("judge-x") == 120
    store = suite.path / "llmeval-calibration.json"
    pytest.LineMatcher(printed).fnmatch_lines(
        [
            f"judge judge-x (judge-x), rubric *: {RUBRIC}",
            "  60 items, 2 run(s) each; counts from the first run",
            "  sensitivity   30/30  = 100.0%  95% CI  88.4% - 100.0%   (judged pass | truly pass)",
            "  specificity   27/30  =  90.0%  95% CI  73.5% -  97.9%   (judged fail | truly fail)",
            "  agreement     57/60  =  95.0%  95% CI  86.1% -  99.0%   (judge = human)",
            "  all runs     sensitivity 100.0%, specificity 90.0%; "
            "60/60 items judged the same in every run",
            f"llmeval: 1 calibration(s) of judge-x stored in {store}",
        ]
    )
    (entry,) = json.loads(store.read_text())["calibrations"]
    assert (entry["judge"], entry["set"], entry["items"], entry["runs"]) == (
        "judge-x", "labels.jsonl", 60, 2,
    )  # fmt: skip
    counts = [entry[k] for k in ("true_pos", "false_neg", "true_neg", "false_pos")]
    assert counts == [30, 0, 27, 3] and entry["pooled"] == [60, 0, 54, 6]
    assert entry["errors"] == 0 and entry["consistent_items"] == 60

    suite.makepyfile(test_graded=GRADED.replace("samples=8", "samples=16"))
    result = suite.runpytest("--llm-models=good,weak", "--llm-report=r.json")
    result.assert_outcomes(passed=1, failed=1)
    found = rows(suite)
    good = found["test_graded.py::test_refund[good]"]["judged"]
    weak = found["test_graded.py::test_refund[weak]"]["judged"]
    assert good["rubric"] == weak["rubric"] == entry["fingerprint"]
    assert good["about"] == weak["about"] == "true_rate"
    assert good["calibration"] == {
        "set": "labels.jsonl", "items": 60, "true_pos": 30, "false_neg": 0, "true_neg": 27,
        "false_pos": 3, "sensitivity": 1.0, "specificity": 0.9,
    }  # fmt: skip
    assert (good["judged_rate"], good["corrected_rate"], good["ci"][1]) == (1.0, 1.0, 1.0)
    # Rogan-Gladen: (q + Sp - 1) / (Se + Sp - 1) = (0.25 - 0.1) / 0.9
    assert weak["judged_rate"] == 0.25 and weak["corrected_rate"] == pytest.approx(1 / 6)
    low, high = weak["ci"]
    assert low == 0.0 and 1 / 6 < high < 0.8
    assert "Rogan-Gladen corrected" in weak["note"] and "Se 30/30, Sp 27/30" in weak["note"]
    result.stdout.fnmatch_lines(
        [
            "*llmeval: the judge 'judge-x' passed 4/16 samples; corrected for its measured "
            f"error the true pass rate is 16.7% (95% CI 0.0%-{high:.1%}), pass_rate 0.80 "
            "[[]not_worse[]] not met",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "test_graded.py::test_refund  good *judge-x *100.0% *100.0% *"
            f"{good['ci'][0] * 100:.0f}-100% *true rate (calibrated judge)",
            "test_graded.py::test_refund  weak *judge-x *25.0% *16.7% *"
            f"0-{high * 100:.0f}% *true rate (calibrated judge)",
        ]
    )

    assert main([*command[:2], "--judge", "coin", "--runs", "1"]) == 0
    assert "calibration(s) of coin stored" in capsys.readouterr().out
    assert len(json.loads(store.read_text())["calibrations"]) == 2  # the first one kept
    coin = suite.runpytest("--llm-models=good", "--llm-judge=coin", "--llm-report=r.json")
    coin.assert_outcomes(errors=1)
    (row,) = rows(suite).values()
    assert row["verdict"] == "error" and row["judged"]["about"] == "true_rate"
    assert row["judged"]["calibration"]["items"] == 60
    coin.stdout.fnmatch_lines(
        ["*llmeval: judged by 'coin': judge not informative enough: Se + Sp may be <= 1 *"]
    )


def test_a_judge_answering_outside_its_schema_makes_error_samples(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("good", RIGHT)
    gateway.add_model("judge-x", ScriptedJudge(says_refund, malformed=1.0))
    configure(suite, gateway, 'judge = "judge-x"')
    suite.makepyfile(test_graded=GRADED.replace("samples=8", "samples=6"))
    result = suite.runpytest("--llm-models=good", "--llm-report=r.json")
    result.assert_outcomes(errors=1)
    (row,) = rows(suite).values()
    assert (row["verdict"], row["passed"], row["failed"], row["errors"]) == ("error", 0, 0, 6)
    assert row["metrics"]["errors_by_cause"] == {"judge_format": 6}
    assert {s["cause"] for s in row["samples"]} == {"judge_format"}
    assert not any("judgements" in s for s in row["samples"])
    messages = " | ".join(s["message"] for s in row["samples"])
    assert messages.count("judge 'judge-x' answered outside its schema") == 6
    for kind in ("not JSON", "verdict: 'maybe' is not one of", "'verdict' is a required property"):
        assert kind in messages  # prose, a value outside the enum, a missing key
    result.stdout.fnmatch_lines(["errors of good by cause: judge_format 6 *"])


BOTH = (
    GRADED
    + """
@pytest.mark.llmeval(pass_rate=0.8, samples=4)
def test_close(llm, similar):
    assert similar(llm.chat("Any news?").text, "The refund was issued today!") > 0.8
"""
)


def test_the_response_cache_replays_the_judge_and_the_embeddings(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("good", RIGHT)
    gateway.add_model("judge-x", ScriptedJudge(says_refund))
    gateway.add_embedding_model("emb")
    configure(suite, gateway, 'judge = "judge-x"\nembedding = "emb"')
    suite.makepyfile(test_cached=BOTH)
    args = ("--llm-models=good", "--llm-report=r.json")
    suite.runpytest(*args, "--llm-cache=readwrite").assert_outcomes(passed=2)
    sent = {name: gateway.request_count(name) for name in ("good", "judge-x", "emb")}
    assert sent == {"good": 12, "judge-x": 8, "emb": 4}
    live = rows(suite)
    # A replay that reached the gateway would now fail both tests.
    gateway.add_model("judge-x", ScriptedJudge(lambda output, rubric: False))
    gateway.add_embedding_model("emb", lambda text: [1.0, 0.0] if "Your" in text else [0.0, 1.0])
    replay = suite.runpytest(*args, "--llm-cache=replay", *plugin_args)
    replay.assert_outcomes(passed=2)
    assert gateway.request_count() == sum(sent.values())
    for nodeid, row in rows(suite).items():
        assert row["verdict"] == "passed" and row["run"] == live[nodeid]["run"]
        assert all(s["cached"] for s in row["samples"])
        assert all(call["cached"] for s in row["samples"] for call in s["calls"])
        roles = row["metrics"]["roles"]
        assert {r: part["calls"] for r, part in roles.items()} == {
            r: part["calls"] for r, part in live[nodeid]["metrics"]["roles"].items()
        }
    graded = rows(suite)["test_cached.py::test_refund[good]"]
    assert [s["judgements"][0]["passed"] for s in graded["samples"]] == [True] * 8
    replay.stdout.fnmatch_lines(["cache of good: 12/12 samples*"])


def test_the_judges_calls_count_toward_the_budget(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    gateway.add_model("weak", RIGHT)  # unpriced: only the judge spends
    gateway.add_model("judge-x", ScriptedJudge(says_refund))
    configure(suite, gateway, 'judge = "judge-x"')
    suite.makepyfile(test_graded=GRADED)
    # A judge call costs $0.00036 and may cost up to $0.0032 (its prompt and its answer capped
    # at max_output_tokens): five fit in $0.005, the last three would not.
    result = suite.runpytest("--llm-models=weak", "--llm-budget=0.005", "--llm-report=r.json")
    result.assert_outcomes(passed=1)
    found = report(suite)
    (row,) = found["tests"]
    assert (row["passed"], row["errors"]) == (5, 3)
    assert row["metrics"]["errors_by_cause"] == {"budget": 3}
    assert gateway.request_count("weak") == 8 and gateway.request_count("judge-x") == 5
    judge_usd = row["metrics"]["roles"]["judge"]["cost_usd"]
    assert judge_usd == pytest.approx(5 * 0.00036)
    assert found["budget"] == {"limit_usd": 0.005, "spent_usd": pytest.approx(judge_usd)}
    for sample in (s for s in row["samples"] if s["outcome"] == "error"):
        (refused,) = by_role(sample, "judge")
        assert refused["cause"] == "budget" and sample["message"].startswith("budget exhausted")
    result.stdout.fnmatch_lines(
        ["errors of weak by cause: budget 3 *", "budget: $0.0018 spent of $0.005"]
    )


PAIRED = """
import pytest

@pytest.mark.llmeval(samples=6)
def test_better(llm, llm_rival, judge):
    question = "How do I get my money back?"
    first, second = llm.chat(question).text, llm_rival.chat(question).text
    labels = (llm.model.name, llm_rival.model.name)
    assert judge.compare(first, second, "more helpful", labels=labels).labels == labels
"""
ANSWERS = {
    "brief": "Ask us.",
    "plain": "Ask us for a refund.",
    "thorough": "Ask us for a refund with your order number; it takes five days.",
}
WRITERS = "".join(f"\n[models.{name}]\ninput_cost_per_mtok = 1.0\n" for name in ANSWERS)


def longer(a: str, b: str, criterion: str) -> str:
    """The scripted judge's true preference: the longer answer is more helpful."""
    return "A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie"


def preferences(suite: pytest.Pytester) -> dict[tuple[str, str], dict[str, Any]]:
    return {(p["a"], p["b"]): p for p in report(suite)["preferences"]}


def test_pairwise_preferences_run_once_per_pair_and_count_wins(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    for name, answer in ANSWERS.items():
        gateway.add_model(name, answer)
    gateway.add_model("judge-x", ScriptedJudge(says_refund, prefer=longer))
    configure(suite, gateway, 'judge = "judge-x"', PRICES + WRITERS)
    suite.makepyfile(test_paired=PAIRED)
    args = ("--llm-models=brief,plain,thorough", "--llm-report=r.json", "--llm-report-md=r.md")
    result = suite.runpytest(*args, *plugin_args)
    result.assert_outcomes(passed=3)
    assert gateway.request_count("judge-x") == 3 * 6 * 2  # pairs x samples x both orders
    found = rows(suite)
    assert sorted(found) == [
        "test_paired.py::test_better[brief-vs-plain]",
        "test_paired.py::test_better[brief-vs-thorough]",
        "test_paired.py::test_better[plain-vs-thorough]",
    ]
    row = found["test_paired.py::test_better[brief-vs-plain]"]
    assert row["model"] == "brief" and row["test"] == "test_paired.py::test_better[vs-plain]"
    assert row["plan"]["paired"] and row["plan"]["judged"]
    # Rows of pairs are not cases of a suite: no leaderboard, McNemar test or routing of them.
    assert (found_report := report(suite))["suites"] == found_report["comparisons"] == []
    assert set(row["metrics"]["roles"]) == {"judge", "rival"}
    assert row["metrics"]["roles"]["rival"]["calls"] == 6
    assert row["metrics"]["roles"]["rival"]["cost_usd"] > 0
    for sample in row["samples"]:
        (compared,) = sample["judgements"]
        assert compared["kind"] == "compare" and compared["labels"] == ["brief", "plain"]
        assert compared["winner"] == "plain" and compared["consistent"]
    assert preferences(suite)[("brief", "plain")] == {
        "suite": "test_paired.py::test_better", "a": "brief", "b": "plain", "cases": 6,
        "a_rate": 0.0, "b_rate": 1.0, "a_only": 0, "b_only": 6, "p_value": pytest.approx(1 / 32),
        "significant": True, "ties": 0, "flips": 0,
    }  # fmt: skip
    assert {pair: p["b_only"] for pair, p in preferences(suite).items()} == {
        ("brief", "plain"): 6, ("brief", "thorough"): 6, ("plain", "thorough"): 6,
    }  # fmt: skip
    result.stdout.fnmatch_lines(
        [
            "which is better *model A *model B *compared *A better *B better *ties (flips) "
            "*sign test p *verdict",
            "test_paired.py::test_better *brief *plain *6 *0 *6 *0 (0) *0.03125 *plain better",
            "test_paired.py::test_better *brief *thorough *6 *0 *6 *0 (0) *0.03125 "
            "*thorough better",
            "test_paired.py::test_better *plain *thorough *6 *0 *6 *0 (0) *0.03125 "
            "*thorough better",
        ]
    )
    assert any(line.startswith("test ") and "judge $  rival $" in line for line in result.outlines)
    md = (suite.path / "r.md").read_text()
    assert "### Which model writes better answers" in md
    assert "| `test_paired.py::test_better` | brief | plain | 0 | 6 | 0 (0) | 0.0313 |" in md


def test_a_judge_biased_to_position_prefers_neither_and_one_model_has_no_pair(
    suite: pytest.Pytester, gateway: FakeGateway
) -> None:
    for name, answer in ANSWERS.items():
        gateway.add_model(name, answer)
    gateway.add_model("judge-x", ScriptedJudge(says_refund, prefer=longer, position_bias=1.0))
    configure(suite, gateway, 'judge = "judge-x"', PRICES + WRITERS)
    suite.makepyfile(test_paired=PAIRED)
    result = suite.runpytest("--llm-models=brief,plain,thorough", "--llm-report=r.json")
    result.assert_outcomes(passed=3)
    for p in preferences(suite).values():
        assert (p["cases"], p["a_only"], p["b_only"], p["ties"], p["flips"]) == (6, 0, 0, 6, 6)
        assert p["p_value"] == 1.0 and not p["significant"]
    result.stdout.fnmatch_lines(
        ["test_paired.py::test_better *brief *plain *6 *0 *0 *6 (6) *1 *no significant difference"]
    )
    alone = suite.runpytest("--llm-models=brief", "-rs")
    alone.assert_outcomes(skipped=1)
    alone.stdout.fnmatch_lines(["SKIPPED *llm_rival needs at least two models in the run"])
    assert gateway.request_count("judge-x") == 3 * 6 * 2


AHEAD = f"""
import pytest

RUBRIC = {RUBRIC!r}

@pytest.mark.parametrize("i", range(12))
@pytest.mark.llmeval(samples=1, mode="observed")
def test_case(llm, judge, i):
    assert judge(llm.chat(f"case {{i}}").text, RUBRIC)
"""


def test_judged_cases_run_ahead_of_their_turn(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    gateway.add_model("good", RIGHT, latency_s=0.2)
    gateway.add_model("judge-x", ScriptedJudge(says_refund))
    configure(suite, gateway, 'judge = "judge-x"')
    suite.makepyfile(test_early=AHEAD)
    args = ("--llm-models=good", "--llm-concurrency=6", "--llm-report=r.json")
    result = suite.runpytest(*args, *plugin_args)
    result.assert_outcomes(passed=12)
    found = rows(suite).values()
    assert len(found) == 12 and all(row["plan"]["judged"] for row in found)
    assert not any("in_order" in row for row in found)
    assert "cases that waited for their turn" not in result.stdout.str()
    # One case at a time would never have two of the model's requests in flight.
    assert gateway.peak_in_flight >= (2 if "2" in plugin_args else 3)


def test_calibrating_against_an_unreachable_gateway_says_so_and_stores_nothing(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_llmeval.__main__ import main

    labelled = pytester.path / "set.jsonl"
    labelled.write_text('{"rubric": "r", "output": "o", "label": "pass"}\n')
    pytester.makefile(".toml", llmeval='judge = "j"\nretries = 0\ntimeout = 2\n')
    code = main(["judge-calibrate", str(labelled), "--base-url", "http://127.0.0.1:9/v1",
                 "--runs", "1", "--config", str(pytester.path / "llmeval.toml")])  # fmt: skip
    assert code == 2
    assert "gave no usable judgement" in capsys.readouterr().err
    assert not (pytester.path / "llmeval-calibration.json").exists()
