"""The HTML report as people use it, in headless Chromium driven by Playwright: filters, groups,
opened rows with samples and transcripts, the model x test matrix, baseline diffs and history.

The report comes from two real runs of a small suite against the fake gateway, the second
against the first as its baseline: its transcripts (`--llm-record=failures`, the default) and
baseline diffs are the plugin's own. History series and hostile text are added where a test
needs them, typed as the schema says.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from pytest_llmeval.report.baseline import load_report
from pytest_llmeval.report.html_report import html
from pytest_llmeval.report.schema import HistorySeries, Report, Row, Transcript
from pytest_llmeval.testing import Cycle, FakeGateway, RecordedRequest
from pytest_llmeval.testing.browser import CHROMIUM_FLAGS

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="needs chromium: apt-get install chromium"),
    pytest.mark.slow,  # two runs of the suite and a browser
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")
ALPHA = """
import pytest

@pytest.mark.llmeval(pass_rate=0.9, samples=6, mode="observed")
def test_greeting(llm):
    assert "PASS" in llm.chat("Say PASS to greet").text

@pytest.mark.llmeval(pass_rate=0.5, samples=4, mode="observed")
@pytest.mark.parametrize("case", ["x", "y"])
def test_cases(llm, case):
    assert "PASS" in llm.chat("Say PASS for " + case).text
"""
BETA = """
import pytest

@pytest.mark.llmeval(pass_rate=0.9, samples=10, mode="observed")
def test_summary(llm):
    assert "PASS" in llm.chat("{prompt}").text
"""
OLD_PROMPT, NEW_PROMPT = "Summarise: PASS", "Summarise briefly: PASS"
SUMMARY, GREETING = "test_html_beta.py::test_summary", "test_html_alpha.py::test_greeting"
HOSTILE = "</script><script>alert(1)</script><!-- <img src=x onerror=alert(2)>"
ROWS = """() => [...document.querySelectorAll('#results tbody tr[data-row]')]
  .map(tr => [tr.cells[0].textContent, tr.cells[1].textContent])"""


def mixed(greeting: str) -> Callable[[RecordedRequest], str]:
    """Answers `greeting` to the greeting; to every other prompt PASS and FAIL in turn, so each
    test gets half of each whatever the order of its samples."""
    rounds: dict[str, Cycle] = {}

    def answer(request: RecordedRequest) -> str:
        if "greet" in request.prompt:
            return greeting
        return rounds.setdefault(request.prompt, Cycle(["PASS", "FAIL"]))(request)

    return answer


def run_twice(suite: pytest.Pytester, gateway: FakeGateway) -> Report:
    """A baseline run, then a run where the greeting regressed and the summary's prompt changed."""
    suite.makefile(
        ".toml",
        llmeval=f'base_url = "{gateway.base_url}"\nretries = 0\n[models.good]\n[models.mixed]\n',
    )
    suite.makepyfile(test_html_alpha=ALPHA, test_html_beta=BETA.format(prompt=OLD_PROMPT))
    gateway.add_model("good", "PASS")
    gateway.add_model("mixed", mixed("PASS"))
    args = ["--llm-models=good,mixed", "--llm-concurrency=30", "-p", "no:randomly"]
    # In a subprocess: this process runs Playwright's event loop, which the plugin's own
    # asyncio loop cannot share.
    suite.runpytest_subprocess(*args, "--llm-report=base.json").assert_outcomes(passed=7, failed=1)
    suite.makepyfile(test_html_beta=BETA.format(prompt=NEW_PROMPT))
    gateway.add_model("mixed", mixed("FAIL"))
    suite.runpytest_subprocess(*args, "--llm-baseline=base.json", "--llm-report=report.json")
    return load_report(suite.path / "report.json")


@pytest.fixture(scope="module")
def built() -> dict[str, Report]:
    """The module's real report, built once by the first test that asks for it."""
    return {}


@pytest.fixture
def report(built: dict[str, Report], suite: pytest.Pytester, gateway: FakeGateway) -> Report:
    """A fresh copy of the report of `run_twice`."""
    if "report" not in built:
        built["report"] = run_twice(suite, gateway)
    return copy.deepcopy(built["report"])


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS))
        yield browser
        browser.close()


@pytest.fixture
def page(browser: sync_api.Browser) -> Iterator[sync_api.Page]:
    """A browser tab; at the end, no script error, blocked load or alert may have happened."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("dialog", lambda dialog: (problems.append(dialog.message), dialog.dismiss()))
    yield page
    page.close()
    assert problems == []


def show(
    page: sync_api.Page, path: Path, report: Report, history: Sequence[HistorySeries] = ()
) -> sync_api.Page:
    path.write_text(html(report, history), encoding="utf-8")
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-rendered=yes]")
    return page


def shown(page: sync_api.Page) -> set[tuple[str, str]]:
    return {(test, model) for test, model in page.evaluate(ROWS)}


def rows(report: Report, keep: Callable[[Row], bool] = lambda row: True) -> set[tuple[str, str]]:
    return {(r["test"], r["model"]) for r in report["tests"] if keep(r)}


def row_of(report: Report, test: str, model: str) -> Row:
    return next(r for r in report["tests"] if (r["test"], r["model"]) == (test, model))


def button(page: sync_api.Page, test: str, model: str) -> sync_api.Locator:
    row = page.locator("#results tbody tr[data-row]").filter(
        has=page.locator("td:nth-child(2)", has_text=model)
    )
    return row.locator("button.open", has_text=test)


def transcript(prompt: str, answer: str) -> Transcript:
    return {
        "calls": [
            {
                "role": "model",
                "endpoint": "chat",
                "messages": [{"role": "user", "content": prompt}],
                "answer": answer,
                "finish_reason": "stop",
                "tool_calls": [],
                "error": None,
            }
        ],
        "truncated": False,
    }


def test_filters_combine_and_survive_a_reload(
    page: sync_api.Page, report: Report, tmp_path: Path
) -> None:
    show(page, tmp_path / "report.html", report)
    assert shown(page) == rows(report) and len(rows(report)) == 8
    page.select_option("#f-model", "mixed")
    assert shown(page) == rows(report, lambda r: r["model"] == "mixed")
    page.select_option("#f-verdict", "failed")
    failed = rows(report, lambda r: r["model"] == "mixed" and r["verdict"] == "failed")
    assert shown(page) == failed == {(GREETING, "mixed"), (SUMMARY, "mixed")}
    page.select_option("#f-file", "test_html_alpha.py")
    assert shown(page) == {(GREETING, "mixed")}
    page.select_option("#f-change", "regressed")
    assert shown(page) == {(GREETING, "mixed")}
    assert page.text_content("#status") == "1 of 8 rows match the filters"
    page.reload()  # the filters live in the URL's hash: a reload or a shared link keeps them
    page.wait_for_selector("body[data-rendered=yes]")
    assert shown(page) == {(GREETING, "mixed")}
    assert page.input_value("#f-file") == "test_html_alpha.py"
    page.click("#f-clear")
    page.select_option("#f-change", "changed")
    assert shown(page) == {(SUMMARY, "good"), (SUMMARY, "mixed")}
    page.select_option("#f-change", "")
    page.fill("#f-q", "CASES")
    assert shown(page) == rows(report, lambda r: "test_cases" in r["test"])
    assert len(shown(page)) == 4


def test_rows_group_by_file_and_by_suite(
    page: sync_api.Page, report: Report, tmp_path: Path
) -> None:
    show(page, tmp_path / "report.html", report)
    page.select_option("#f-group", "file")
    groups = page.locator("#results tr.group")
    assert groups.evaluate_all("trs => trs.map(tr => tr.dataset.group)") == [
        "test_html_alpha.py",
        "test_html_beta.py",
    ]
    alpha = [r for r in report["tests"] if r["test"].startswith("test_html_alpha.py")]
    passed, valid = sum(r["passed"] for r in alpha), sum(r["passed"] + r["failed"] for r in alpha)
    stats = groups.first.locator(".group-stats").text_content() or ""
    assert stats.startswith("6 rows · ")
    assert f"{100 * passed / valid:.1f}% of {valid} valid samples passed" in stats
    groups.first.locator("button").click()  # collapse
    assert groups.first.locator("button").get_attribute("aria-expanded") == "false"
    assert shown(page) == rows(report, lambda r: r["test"].startswith("test_html_beta.py"))
    groups.first.locator("button").press("Enter")  # and open again, by keyboard
    assert shown(page) == rows(report)
    page.select_option("#f-group", "suite")
    labels = groups.evaluate_all("trs => trs.map(tr => tr.dataset.group)")
    assert labels == ["test_html_alpha.py::test_cases", "(not in a suite)"]
    assert (groups.first.locator(".group-stats").text_content() or "").startswith("4 rows · ")


def test_an_opened_row_lists_failures_first_with_their_transcripts(
    page: sync_api.Page, report: Report, tmp_path: Path
) -> None:
    summary = row_of(report, SUMMARY, "mixed")
    assert summary["passed"] >= 3 and summary["failed"] >= 3  # PASS and FAIL in turn
    assert report.get("record") == "failures"
    show(page, tmp_path / "report.html", report)
    assert page.locator("#results tr.detail").count() == 0  # built only when opened
    opener = button(page, SUMMARY, "mixed")
    opener.focus()
    page.keyboard.press("Enter")
    assert opener.get_attribute("aria-expanded") == "true"
    detail = page.locator("#results tr.detail")
    samples = detail.locator("article.sample")
    outcomes = samples.evaluate_all("list => list.map(a => a.className)")
    assert outcomes == ["sample failed"] * 5 + ["sample passed"] * 5
    first = samples.first
    assert first.locator("pre.message").text_content() == "assert 'PASS' in 'FAIL'"
    assert first.locator(".transcript .msg.user pre").text_content() == NEW_PROMPT
    assert first.locator(".transcript .msg.answer pre").text_content() == "FAIL"
    assert "tokens" in (first.locator(".numbers").text_content() or "")
    kept = samples.evaluate_all("list => list.map(a => !!a.querySelector('.transcript'))")
    assert kept == [True] * 7 + [False] * 3  # failures and the first two passes
    assert detail.locator("details.transcript[open]").count() == 1  # the first failure's
    assert samples.nth(5).locator(".msg.answer pre").text_content() == "PASS"
    last = samples.nth(9)
    assert last.locator(".transcript").count() == 0
    assert last.locator(".none").text_content() == (
        "no transcript kept (--llm-record); this run recorded: failures"
    )
    assert "Samples (10): 5 failed, 0 erred, 5 passed" in (detail.text_content() or "")
    page.keyboard.press("Enter")
    assert opener.get_attribute("aria-expanded") == "false"
    assert page.locator("#results tr.detail").count() == 0


def test_the_matrix_puts_models_side_by_side(
    page: sync_api.Page, report: Report, tmp_path: Path
) -> None:
    show(page, tmp_path / "report.html", report)
    matrix = page.locator("#matrix-view")
    matrix.scroll_into_view_if_needed()
    page.wait_for_selector("#matrix td.cell")
    head = page.locator("#matrix thead th").all_text_contents()
    assert head == ["test", "good", "mixed"]
    labels = page.locator("#matrix tbody th").all_text_contents()
    assert labels[0] == "suite test_html_alpha.py::test_cases"
    assert labels[1:] == sorted({r["test"] for r in report["tests"]})
    line = page.locator("#matrix tbody tr").filter(has_text=SUMMARY)
    good, bad = line.locator("td.cell").all()
    assert good.locator(".rate").text_content() == "100%"
    summary = row_of(report, SUMMARY, "mixed")  # how many ran depends on timing
    passed, valid = summary["passed"], summary["passed"] + summary["failed"]
    assert bad.locator(".rate").text_content() == f"{100 * passed / valid:.0f}%"
    assert f"{passed}/{valid} passed, 95% CI" in (bad.get_attribute("title") or "")
    assert good.evaluate("td => getComputedStyle(td).backgroundColor") != bad.evaluate(
        "td => getComputedStyle(td).backgroundColor"
    )
    bad.locator("button").click()  # a cell opens its row in the table
    opened = page.locator("#results tr.opened")
    assert opened.locator("button.open").text_content() == SUMMARY
    assert opened.locator("td").nth(1).text_content() == "mixed"
    one = copy.deepcopy(report)
    one["tests"] = [r for r in one["tests"] if r["model"] == "good"]
    one["totals"] = {"good": one["totals"]["good"]}
    show(page, tmp_path / "one.html", one)
    assert page.locator("#matrix-view").count() == 0


def test_a_changed_row_shows_baseline_and_current_side_by_side(
    page: sync_api.Page, report: Report, tmp_path: Path
) -> None:
    show(page, tmp_path / "report.html", report)
    regressed = page.locator("#results tr.regressed")
    assert regressed.count() == 1 and "regressed" in (regressed.text_content() or "")
    assert page.locator("#results tr.changed .badge.prompt-changed").count() == 2
    button(page, SUMMARY, "mixed").click()
    versus = page.locator("#results tr.detail .versus")
    (compared,) = [
        r for r in report["baseline"]["rows"] if (r["test"], r["model"]) == (SUMMARY, "mixed")
    ]
    was, now = compared["baseline_passed"], compared["passed"]
    was_of, now_of = compared["baseline_valid"], compared["valid"]
    assert f"was {was}/{was_of} ({was / was_of:.1%}), now {now}/{now_of} ({now / now_of:.1%})" in (
        versus.text_content() or ""
    )
    assert versus.locator(".prompt-diff .del").all_text_contents() == [f"-user: {OLD_PROMPT}\n"]
    assert versus.locator(".prompt-diff .add").all_text_contents() == [f"+user: {NEW_PROMPT}\n"]
    old, new = versus.locator(".side.baseline"), versus.locator(".side.current")
    assert old.locator("pre.answer").text_content() == "PASS"
    assert old.locator(".badge").text_content() == "passed"
    assert new.locator("pre.answer").text_content() == "FAIL"
    assert new.locator("pre.message").text_content() == "assert 'PASS' in 'FAIL'"
    left, right = old.bounding_box(), new.bounding_box()
    assert left is not None and right is not None and left["x"] < right["x"]  # side by side
    opener = button(page, GREETING, "mixed")
    opener.click()  # regressed with the same prompt
    versus = page.locator(f"#{opener.get_attribute('aria-controls')} .versus")
    assert "The messages sent are the same as in the baseline." in (versus.text_content() or "")
    assert versus.locator(".side.current pre.answer").text_content() == "FAIL"


def test_history_is_drawn_from_the_series_given(
    page: sync_api.Page, report: Report, tmp_path: Path
) -> None:
    rates = [(6, 6), (6, 6), (5, 6), (0, 6)]
    series: HistorySeries = {
        "test": GREETING,
        "model": "mixed",
        "points": [
            {
                "run": run,
                "created_at": f"2025-06-0{run}T10:00:00+00:00",
                "commit": f"{run}abcdef0123456789",
                "passed": passed,
                "valid": valid,
                "rate": passed / valid,
                "ci": [max(0.0, passed / valid - 0.3), min(1.0, passed / valid + 0.1)],
                "cost_usd": None,
                "verdict": "passed" if passed >= 5 else "failed",
            }
            for run, (passed, valid) in enumerate(rates, start=1)
        ],
    }
    elsewhere: HistorySeries = {**series, "test": "gone.py::test_gone"}
    show(page, tmp_path / "report.html", report, [series, elsewhere])
    sparks = page.locator("#results td svg.spark")
    assert sparks.count() == 1
    assert sparks.get_attribute("aria-label") == "pass rate over 4 runs: 100% to 0%"
    button(page, GREETING, "mixed").click()
    chart = page.locator("#results tr.detail svg.history")
    band = chart.locator("polygon.band").get_attribute("points") or ""
    assert len(band.split()) == 8  # upper bounds out, lower bounds back
    points = chart.locator("circle.point")
    assert points.count() == 4
    assert points.evaluate_all("cs => cs.map(c => c.getAttribute('class'))") == [
        "point passed",
        "point passed",
        "point passed",
        "point failed",
    ]
    title = points.nth(2).locator("title").text_content() or ""
    assert title.startswith("run 3 · 3abcdef · 2025-06-03") and "5/6 (83.3%)" in title
    ticks = chart.locator("text.tick:not(.date)").all_text_contents()
    assert ticks == ["1abcdef", "2abcdef", "3abcdef", "4abcdef"]


def test_hostile_transcript_text_stays_text(
    page: sync_api.Page, report: Report, tmp_path: Path
) -> None:
    greeting = row_of(report, GREETING, "mixed")
    sample = greeting["samples"][0]
    sample["message"] = HOSTILE
    sample["transcript"] = transcript(HOSTILE, HOSTILE + "</script>")
    path = tmp_path / "report.html"
    show(page, path, report)
    assert HOSTILE not in path.read_text()  # the data cannot close its <script>
    button(page, GREETING, "mixed").click()
    first = page.locator("#results tr.detail article.sample").first
    assert first.locator(".msg.user pre").text_content() == HOSTILE
    assert first.locator(".msg.answer pre").text_content() == HOSTILE + "</script>"
    assert first.locator("pre.message").text_content() == HOSTILE
    assert page.evaluate("document.scripts.length") == 2  # the data and the page's own script
    assert page.locator("img").count() == 0


def test_a_long_table_pages_and_sorts(page: sync_api.Page, report: Report, tmp_path: Path) -> None:
    template = row_of(report, SUMMARY, "mixed")
    many = []
    for k in range(250):
        row = copy.deepcopy(template)
        row["test"] = f"test_html_gamma.py::test_many[{k:03d}]"
        row["passed"], row["failed"] = k % 11, 10 - k % 11
        many.append(row)
    report["tests"] = many
    report.pop("baseline")
    show(page, tmp_path / "report.html", report)
    assert page.locator("#results tbody tr[data-row]").count() == 100
    assert page.text_content("#status") == "250 rows; showing 1-100 of 250 lines"
    page.click("#pager button[aria-label='next page']")
    assert page.locator("#results tbody tr[data-row]").count() == 100
    assert page.text_content("#pager .where") == "page 2 of 3"
    page.click("#pager button[aria-label='last page']")
    assert page.locator("#results tbody tr[data-row]").count() == 50
    rate = page.locator("#results thead th", has_text="rate")
    rate.click()  # from worst first (the default) to best first
    assert rate.get_attribute("aria-sort") == "descending"
    assert page.text_content("#pager .where") == "page 1 of 3"
    first = page.locator("#results tbody tr[data-row]").first.locator("td").nth(3)
    assert first.text_content() == "100.0%"
    model = page.locator("#results thead th", has_text="model")
    model.focus()
    page.keyboard.press("Enter")
    assert model.get_attribute("aria-sort") == "ascending"
    assert rate.get_attribute("aria-sort") is None
