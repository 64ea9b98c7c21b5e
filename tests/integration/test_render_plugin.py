"""Reports for people through the plugin: Markdown, HTML (headless Chromium), JUnit properties."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_llmeval.testing import Cycle, FakeGateway
from pytest_llmeval.testing.browser import CHROMIUM_FLAGS

SUITE = """
import pytest

@pytest.mark.llmeval(pass_rate=0.9, samples=10, mode="observed")
def test_strict(llm):
    assert "PASS" in llm.chat("Say PASS").text

@pytest.mark.llmeval(pass_rate=0.2, samples=10, mode="observed", models=["good"])
def test_lenient(llm):
    assert "PASS" in llm.chat("Say PASS | politely").text
"""
CHROMIUM = shutil.which("chromium")


def run_suite(suite: pytest.Pytester, gateway: FakeGateway, *args: str) -> pytest.RunResult:
    gateway.add_model("good", "PASS")
    gateway.add_model("mixed", Cycle(["PASS", "FAIL"]))
    suite.makefile(
        ".toml",
        llmeval=f"""
base_url = "{gateway.base_url}"
retries = 0

[models.good]
input_cost_per_mtok = 1.0
output_cost_per_mtok = 2.0

[models.mixed]
""",
    )
    suite.makepyfile(test_suite=SUITE)
    # A window as wide as all 30 samples: each test launches its 10 at once and runs them all.
    return suite.runpytest("--llm-models=good,mixed", "--llm-concurrency=30", *args)


def test_markdown_summary(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    result = run_suite(suite, gateway, "--llm-report=base.json", *plugin_args)
    result.assert_outcomes(passed=2, failed=1)
    result = run_suite(
        suite, gateway, "--llm-baseline=base.json", "--llm-report-md=out/summary.md", *plugin_args
    )
    result.stdout.fnmatch_lines(["llmeval Markdown report: out/summary.md"])
    text = (suite.path / "out" / "summary.md").read_text()
    assert text.startswith("## pytest-llmeval\n\n2 passed, 1 failed, 0 errors, 0 regressions")
    assert "| ❌ | `test_suite.py::test_strict` | mixed | 5/10 (50%) |" in text
    assert "| 0.90 observed | failed | was 5/10 (50%), p=0.672 |" in text
    assert "`test_suite.py::test_lenient` | good |" in text  # the | in the prompt is not a column
    assert "**Regressions (0)**" in text and "**Changed prompts (0)**" in text
    assert "| good | 20 | 0 | $0.0001 | - |" in text and "| mixed | 10 | 0 | - | - |" in text
    assert "sk-" not in text


def test_junit_properties(
    suite: pytest.Pytester, gateway: FakeGateway, plugin_args: list[str]
) -> None:
    run_suite(suite, gateway, "--llm-report=base.json", *plugin_args)
    run_suite(suite, gateway, "--junitxml=junit.xml", "--llm-baseline=base.json", *plugin_args)
    cases = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(suite.path / "junit.xml").getroot().iter("testcase")
    }
    strict = cases["test_strict[mixed]"]
    assert strict["llmeval_pass_rate"] == "0.5000" and strict["llmeval_verdict"] == "failed"
    assert strict["llmeval_samples"] == "10/10"
    assert re.fullmatch(r"0\.\d{4}-0\.\d{4}", strict["llmeval_ci"])
    assert strict["llmeval_regressed"] == "false" and strict["llmeval_prompt_changed"] == "false"
    assert cases["test_lenient[good]"]["llmeval_verdict"] == "passed"


def dump_dom(page: Path) -> str:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def table_rows(dom: str) -> list[list[str]]:
    body = dom.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [re.findall(r"<td>(.*?)</td>", tr) for tr in re.findall(r"<tr.*?</tr>", body)]


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium: apt-get install chromium")
def test_html_report_renders_offline(suite: pytest.Pytester, gateway: FakeGateway) -> None:
    run_suite(suite, gateway, "--llm-report=base.json")
    run_suite(suite, gateway, "--llm-baseline=base.json", "--llm-report-html=report.html")
    page = suite.path / "report.html"
    source = page.read_text()
    assert not re.search(r"(src|href|url)\W+https?:", source)  # nothing to fetch
    dom = dump_dom(page)
    assert 'data-rendered="yes"' in dom
    rows = table_rows(dom)
    assert len(rows) == 3
    rates = [row[3] for row in rows]
    assert rates == sorted(rates, key=lambda r: float(r.rstrip("%")))  # sorted by the script
    assert rates[0] == "50.0%" and rates[-1] == "100.0%"
    assert 'data-sorted-by="rate"' in dom and 'aria-sort="ascending"' in dom
    assert dom.count('class="bar"') == 6  # pass rate, latency, cost: one bar per model each
    assert dom.count('class="ci"') == 2  # confidence whiskers on the pass-rate bars
    assert 'aria-label="pass rate (95% CI)"' in dom
