"""pytest glue: options, per-model parametrization, fixtures, sampling, reporting."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import itertools
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Coroutine, Generator, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmeval.calls import CACHE_MODES
from pytest_llmeval.config import (
    DESIGNS,
    ModelSettings,
    Settings,
    find_config_file,
    load_settings,
)
from pytest_llmeval.errors import BaselineError, ConfigError, HistoryError
from pytest_llmeval.lookahead import SessionFixtures, Upcoming, global_reason, readiness
from pytest_llmeval.sandbox import ISOLATIONS
from pytest_llmeval.verdict.marker import (
    UNMARKED,
    CaseOrder,
    EvalSpec,
    Plan,
    check_plan,
    models_for,
    parse_marker,
)
from pytest_llmeval.verdict.policy import (
    FAIL_ON,
    failure_message,
    interruption,
    junit_properties,
    outcome,
    regression_gate,
    row_name,
)
from pytest_llmeval.verdict.transcript import DEFAULT_RECORD, RECORD_MODES

if TYPE_CHECKING:
    from pytest_llmeval.calls.budget import Budget
    from pytest_llmeval.calls.cache import ResponseCache
    from pytest_llmeval.calls.client import LLM
    from pytest_llmeval.calls.runtime import Runtime
    from pytest_llmeval.judging.calibration import CalibrationStore
    from pytest_llmeval.judging.judge import Judge
    from pytest_llmeval.judging.prompts import JudgePrompts
    from pytest_llmeval.judging.similarity import Similarity
    from pytest_llmeval.local.server import LocalServer
    from pytest_llmeval.report.build import Result
    from pytest_llmeval.report.schema import (
        HistorySeries,
        JudgedVerdict,
        ModelInfo,
        Report,
        Row,
        Started,
    )
    from pytest_llmeval.sandbox.host import Limits, Sandbox
    from pytest_llmeval.suite_progress import SuiteProgress
    from pytest_llmeval.testing import FakeGateway
    from pytest_llmeval.verdict.ahead import RunAhead
    from pytest_llmeval.verdict.origin import Machinery
    from pytest_llmeval.verdict.sampling import Classifier, Sampled
    from pytest_llmeval.verdict.window import Window

KEY = "llmeval"
LOCAL_URLS = "llmeval_local_urls"
BUDGET_INPUT = "llmeval_budget"
RUN_DIR_INPUT = "llmeval_run_dir"
SETTINGS = pytest.StashKey[Settings]()
SERVERS: pytest.StashKey[list[LocalServer]] = pytest.StashKey()
BUDGET: pytest.StashKey[Budget] = pytest.StashKey()
BASELINE: pytest.StashKey[Report] = pytest.StashKey()
BASELINE_ROWS: pytest.StashKey[dict[tuple[str, str], Row]] = pytest.StashKey()
HISTORY = pytest.StashKey[Path]()
RUNTIME: pytest.StashKey[Runtime] = pytest.StashKey()
RESULT: pytest.StashKey[Result] = pytest.StashKey()
MACHINERY: pytest.StashKey[Machinery] = pytest.StashKey()
RUN_DIR = pytest.StashKey[Path]()
SPEC = pytest.StashKey[EvalSpec]()
ORDER = pytest.StashKey[CaseOrder]()
ORDER_ERROR = pytest.StashKey[str]()  # a sequential suite whose cases differ in their markers
PROGRESS: pytest.StashKey[SuiteProgress] = pytest.StashKey()
CALIBRATIONS: pytest.StashKey[CalibrationStore] = pytest.StashKey()
NO_MODELS = (
    "no models named: pass --llm-models=NAME[,NAME...] or set models "
    "in [tool.llmeval] of pyproject.toml (or llmeval.toml)"
)


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be >= {minimum}")
        return value

    return parse


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmeval", "LLM evaluation (pytest-llmeval)")
    group.addoption(
        "--llm-models", metavar="A,B", help="models to run; each LLM test runs once per model"
    )
    group.addoption(
        "--llm-judge",
        metavar="NAME",
        help="the model that grades outputs for the `judge` fixture (config: judge)",
    )
    group.addoption(
        "--llm-embedding",
        metavar="NAME",
        help="the embedding model behind the `similar` fixture (config: embedding)",
    )
    group.addoption(
        "--llm-config",
        metavar="PATH",
        help="config file (default: llmeval.toml or [tool.llmeval] in pyproject.toml)",
    )
    group.addoption(
        "--llm-base-url",
        metavar="URL",
        help="default gateway URL (overrides config and OPENAI_BASE_URL)",
    )
    group.addoption(
        "--llm-samples", type=_int_at_least(1), metavar="N", help="override every marker's samples"
    )
    group.addoption(
        "--llm-concurrency",
        type=_int_at_least(1),
        metavar="N",
        help="samples in flight at once in this process, across all LLM tests (default 8)",
    )
    group.addoption(
        "--llm-timeout", type=_positive_float, metavar="S", help="per-request timeout in seconds"
    )
    group.addoption(
        "--llm-retries", type=_int_at_least(0), metavar="N", help="SDK retries per request"
    )
    group.addoption(
        "--llm-budget",
        type=_positive_float,
        metavar="USD",
        help="cap on the run's spend (USD): a request is sent only if its worst case still fits",
    )
    group.addoption(
        "--llm-report", metavar="PATH", help="write the JSON report (every sample) to PATH"
    )
    group.addoption(
        "--llm-design",
        type=_choice(DESIGNS),
        default=None,
        metavar="HOW",
        help="how not_worse and proven verdicts stop, for markers that do not say (design=): "
        "sequential (default; the config's `design` key) or fixed (fixed-N with curtailment)",
    )
    group.addoption(
        "--llm-record",
        type=_choice(RECORD_MODES),
        default=DEFAULT_RECORD,
        metavar="WHICH",
        help="samples whose transcripts (messages, answers, redacted) the JSON and HTML reports "
        "keep: failures (default: failed and erred ones, plus 2 passing per test x model), "
        "all, none",
    )
    group.addoption(
        "--llm-sandbox",
        choices=ISOLATIONS,
        default="bwrap",
        help="how the sandbox fixture isolates generated code: bwrap (default; namespaces, "
        "no network, no host files) or unsafe (a plain subprocess; the report flags it)",
    )
    group.addoption(
        "--llm-report-md",
        metavar="PATH",
        help="write a GitHub-flavoured Markdown summary (for $GITHUB_STEP_SUMMARY, PR comments)",
    )
    group.addoption(
        "--llm-report-html", metavar="PATH", help="write a self-contained HTML report to PATH"
    )
    group.addoption(
        "--llm-baseline",
        metavar="PATH",
        help="compare every test x model with this saved JSON report; significant drops fail",
    )
    group.addoption(
        "--llm-update-baseline",
        action="store_true",
        help="write this run's report to the --llm-baseline path (which may not exist yet)",
    )
    group.addoption(
        "--llm-history",
        metavar="PATH",
        help="append this run's rates per test x model to this SQLite history (config: history)",
    )
    group.addoption(
        "--llm-fail-on",
        type=_choice(FAIL_ON),
        default="both",
        metavar="WHAT",
        help="with a baseline, what fails a test: both (default), regression, threshold",
    )
    group.addoption(
        "--llm-cache",
        type=_choice(CACHE_MODES),
        default="off",
        metavar="MODE",
        help="response cache: off (default), read, write, readwrite, replay (a miss is an error)",
    )
    group.addoption(
        "--llm-cache-dir",
        metavar="DIR",
        default=".llmeval_cache",
        help="directory of the response cache (default .llmeval_cache, under the rootdir)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "llmeval(pass_rate=1.0, samples=None, confidence=0.95, mode='not_worse', models=None, "
        "api=None, suite=False, population='fixed', judge=None): "
        "run the test body as repeated samples and judge the pass rate",
    )
    config.addinivalue_line(
        "markers",
        "llmeval_subject(name): subject of a benchmark case; suite rows give a rate per subject",
    )
    explicit = config.getoption("llm_config")
    if explicit is not None and not Path(explicit).is_file():
        raise pytest.UsageError(f"--llm-config: no such file: {explicit}")
    path = Path(explicit) if explicit else find_config_file(config.rootpath)
    try:
        settings = load_settings(
            path,
            os.environ,
            models=config.getoption("llm_models"),
            base_url=config.getoption("llm_base_url"),
            concurrency=config.getoption("llm_concurrency"),
            timeout=config.getoption("llm_timeout"),
            retries=config.getoption("llm_retries"),
            judge=config.getoption("llm_judge"),
            embedding=config.getoption("llm_embedding"),
        )
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        settings = settings.with_urls(workerinput.get(LOCAL_URLS, {}))
    elif not config.getoption("collectonly"):
        missing = settings.missing_keys(os.environ)
        if missing:
            raise pytest.UsageError(missing)
    run_dir = _run_dir(workerinput, bool(settings.selected))
    if run_dir is not None:
        config.stash[RUN_DIR] = run_dir
    budget = _budget(config, workerinput, run_dir)
    if budget is not None:
        config.stash[BUDGET] = budget
    config.stash[SETTINGS] = settings
    if settings.selected:
        from pytest_llmeval.calls.runtime import Runtime

        limits = run_dir if workerinput is not None else None
        transcripts = config.getoption("llm_record") != "none"
        config.stash[RUNTIME] = Runtime(settings, budget, _cache(config), limits, transcripts)
    baseline = _baseline(config)
    if baseline is not None:
        from pytest_llmeval.report.baseline import index

        config.stash[BASELINE] = baseline
        config.stash[BASELINE_ROWS] = index(baseline)
    if workerinput is None:
        history = _history(config, settings)
        if history is not None:
            config.stash[HISTORY] = history
    _terminate_as_interrupt(config)
    config.pluginmanager.register(Sampler(config), "llmeval-sampler")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(config), "llmeval-xdist")
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(Reporter(config), "llmeval-reporter")


def _terminate_as_interrupt(config: pytest.Config) -> None:
    """SIGTERM (a cancelled CI job) ends the run like Ctrl-C: reports keep what ran, servers and
    sandboxes are stopped. Only where nobody else handles SIGTERM."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    def restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    config.add_cleanup(restore)


def _baseline(config: pytest.Config) -> Report | None:
    """The saved report to compare with; a missing file is fine only when it is to be written."""
    path = config.getoption("llm_baseline")
    update = config.getoption("llm_update_baseline")
    if path is None:
        if update:
            raise pytest.UsageError("--llm-update-baseline needs --llm-baseline=PATH to write")
        if config.getoption("llm_fail_on") == "regression":
            raise pytest.UsageError("--llm-fail-on=regression needs --llm-baseline=PATH")
        return None
    if update and not Path(path).exists():
        return None
    from pytest_llmeval.report.baseline import load_report

    try:
        return load_report(Path(path))
    except BaselineError as exc:
        raise pytest.UsageError(f"--llm-baseline: {exc}") from None


def _history(config: pytest.Config, settings: Settings) -> Path | None:
    """The history database: `--llm-history` (relative to where pytest was started) or the
    config's `history` (relative to the rootdir); an existing file must be one this can extend."""
    option = config.getoption("llm_history")
    if option is None and settings.history is None:
        return None
    if option is not None:
        path = config.invocation_params.dir / str(option)
    else:
        path = config.rootpath / str(settings.history)
    if path.exists():
        from pytest_llmeval.report.history import check

        try:
            check(path)
        except HistoryError as exc:
            where = "--llm-history" if option is not None else f"{settings.source} history"
            raise pytest.UsageError(f"{where}: {exc}") from None
    return path


def _cache(config: pytest.Config) -> ResponseCache | None:
    mode = config.getoption("llm_cache")
    if mode == "off":
        return None
    from pytest_llmeval.calls.cache import ResponseCache

    return ResponseCache(config.rootpath / config.getoption("llm_cache_dir"), mode)


def _budget(
    config: pytest.Config, workerinput: dict[str, Any] | None, run_dir: Path | None
) -> Budget | None:
    """The controller creates the run's ledger in the run folder; workers share its path."""
    from_controller = None if workerinput is None else workerinput.get(BUDGET_INPUT)
    if from_controller:
        from pytest_llmeval.calls.budget import Budget

        return Budget(from_controller[0], Path(from_controller[1]))
    limit = config.getoption("llm_budget")
    if workerinput is not None or limit is None or run_dir is None:
        return None  # no budget, or no model selected: nothing to spend
    from pytest_llmeval.calls.budget import Budget

    return Budget.create(limit, run_dir / "budget")


def _run_dir(workerinput: dict[str, Any] | None, llm_run: bool) -> Path | None:
    """A folder for the run's shared state, made by the controller and handed to workers."""
    if workerinput is not None:
        shared = workerinput.get(RUN_DIR_INPUT)
        return Path(shared) if shared else None
    return Path(tempfile.mkdtemp(prefix="llmeval-run-")) if llm_run else None


def pytest_unconfigure(config: pytest.Config) -> None:
    runtime = config.stash.get(RUNTIME, None)
    try:
        if runtime is not None:
            runtime.close()
    finally:
        servers = config.stash.get(SERVERS, [])
        if servers:
            from pytest_llmeval.local.server import stop_servers

            stop_servers(servers)
    run_dir = config.stash.get(RUN_DIR, None)
    if run_dir is not None and not hasattr(config, "workerinput"):
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Start managed local servers once per run, in the controller, before xdist starts workers."""
    config = session.config
    settings = config.stash[SETTINGS]
    local = settings.local_models()
    if not local or hasattr(config, "workerinput") or config.getoption("collectonly"):
        return
    from pytest_llmeval.errors import LocalServerError
    from pytest_llmeval.local.server import start_servers

    try:
        servers = start_servers(local, config.rootpath, os.environ)
    except LocalServerError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SERVERS] = servers
    urls = {server.name: server.base_url for server in servers}
    config.stash[SETTINGS] = settings.with_urls(urls)
    if RUNTIME in config.stash:
        config.stash[RUNTIME].settings = config.stash[SETTINGS]
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    for server in servers:
        line = (
            f"llmeval: llama-server for {server.name!r} ({server.model.name}) "
            f"ready at {server.base_url} in {server.startup_s:.1f} s"
        )
        if reporter is not None:
            reporter.write_line(line)


class XdistHooks:
    """Hands the controller's local server URLs, budget ledger and limits folder (one for the
    run, so per-model limits hold across workers) to every worker (registered only with xdist)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_configure_node(self, node: Any) -> None:
        servers = self.config.stash.get(SERVERS, [])
        node.workerinput[LOCAL_URLS] = {server.name: server.base_url for server in servers}
        budget = self.config.stash.get(BUDGET, None)
        if budget is not None:
            node.workerinput[BUDGET_INPUT] = (budget.limit_usd, str(budget.ledger))
        run_dir = self.config.stash.get(RUN_DIR, None)
        if run_dir is not None:
            node.workerinput[RUN_DIR_INPUT] = str(run_dir)


def _spec(node: pytest.Item | pytest.Function) -> EvalSpec:
    """The test's marker (read once per item); keywords of an `llmeval` mark on a
    `pytest.param` override the function's, so one case can carry its own threshold."""
    if isinstance(node, pytest.Item):
        found = node.stash.get(SPEC, None)
        if found is None:
            found = node.stash[SPEC] = _read_spec(node)
        return found
    return _read_spec(node)


def _read_spec(node: pytest.Item | pytest.Function) -> EvalSpec:
    callspec = getattr(node, "callspec", None)
    on_param = [m for m in getattr(callspec, "marks", ()) if m.name == "llmeval"]
    outer = [m for m in node.iter_markers("llmeval") if m not in on_param][:1]
    if not on_param and not outer:
        return UNMARKED
    kwargs: dict[str, Any] = {}
    for mark in [*outer, *on_param]:
        kwargs.update(mark.kwargs)
    return parse_marker([*outer, *on_param][-1].args, kwargs, node.nodeid)


def _plan(config: pytest.Config, spec: EvalSpec, model: str) -> Plan:
    """The marker resolved for one model, with the config's default and `--llm-samples`."""
    settings = config.stash[SETTINGS]
    design = config.getoption("llm_design") or settings.design
    return spec.resolve(model, settings.samples, config.getoption("llm_samples"), design)


def _item_plan(item: pytest.Item, model: str) -> Plan:
    """A case's plan: judged when it uses the judge, paired when it compares two models."""
    plan = _plan(item.config, _spec(item), model)
    names = getattr(item, "fixturenames", ())
    return dataclasses.replace(
        plan,
        judged="judge" in names,
        paired="llm_rival" in names,
        order=item.stash.get(ORDER, None),
    )


@pytest.hookimpl(trylast=True)  # after deselection, and after plugins that reorder
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The cases of a suite that stops over cases (`design="sequential"`) get their place in
    its canonical order, and run in that order, so that its prefixes finish first. Every xdist
    worker collects the same items, so every worker finds the same order."""
    if RUNTIME not in config.stash:
        return
    from pytest_llmeval.report.suites import case_name, suite_name
    from pytest_llmeval.suite_progress import canonical

    groups: dict[tuple[str, str], list[tuple[int, str]]] = {}  # (suite, model) -> cases
    for index, item in enumerate(items):
        model = _model_name(item)
        if model is None or not isinstance(item, pytest.Function):
            continue
        spec = _spec(item)
        test = _test_name(item, model)
        suite = suite_name(test)
        if spec.suite and spec.design == "sequential" and suite is not None:
            groups.setdefault((suite, model), []).append((index, case_name(test)))
    place: dict[int, int] = {}
    for (suite, model), members in groups.items():
        ranks, collection = canonical([case for _, case in members])
        plans = set()
        for index, case in members:
            items[index].stash[ORDER] = CaseOrder(ranks[case], len(members), collection)
            place[index] = ranks[case]
            plans.add(dataclasses.replace(_item_plan(items[index], model), order=None))
        if len(plans) > 1:
            message = (
                f"{suite} [{model}]: the cases of a suite with design='sequential' must share "
                "one llmeval marker (a case's own marker changes its threshold or samples)"
            )
            for index, _ in members:
                del items[index].stash[ORDER]
                items[index].stash[ORDER_ERROR] = message
                place.pop(index)
    slots: dict[str, list[int]] = {}
    for (suite, _), members in groups.items():
        slots.setdefault(suite, []).extend(index for index, _ in members if index in place)
    reordered = list(items)
    for indices in slots.values():
        ranked = sorted(indices, key=lambda i: (place[i], i))
        for slot, index in zip(sorted(indices), ranked, strict=True):
            reordered[slot] = items[index]
    items[:] = reordered


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    definition = metafunc.definition
    marked = definition.get_closest_marker("llmeval") is not None
    if "llm_model" not in metafunc.fixturenames:
        if marked:
            pytest.fail(
                f"{definition.nodeid}: the llmeval marker needs the llm or llm_model fixture",
                pytrace=False,
            )
        return
    config = metafunc.config
    settings = config.stash[SETTINGS]
    problem = None
    try:
        spec = _spec(definition)
        names = models_for(spec, settings, definition.nodeid)
        for name in names:
            plan = _plan(config, spec, name)
            warning = check_plan(plan, f"{definition.nodeid}[{name}]")
            if warning:
                warnings.warn(pytest.PytestWarning(warning), stacklevel=1)
    except ConfigError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(problem, pytrace=False)
    if "llm_rival" in metafunc.fixturenames and len(names) > 1:
        pairs = list(itertools.combinations(names, 2))
        ids = [f"{a}-vs-{b}" for a, b in pairs]
        metafunc.parametrize(("llm_model", "llm_rival"), pairs, indirect=True, ids=ids)
    elif names:  # with one model, `llm_rival` skips the test and says why
        metafunc.parametrize("llm_model", names, indirect=True, ids=names)


@pytest.fixture(scope="session")
def llm_gateway_url(request: pytest.FixtureRequest) -> str | None:
    """Base URL for models without their own; override it to point a suite at another gateway."""
    return request.config.stash[SETTINGS].base_url


@pytest.fixture
def llm_model(request: pytest.FixtureRequest) -> ModelSettings:
    """Settings of the model this test instance runs on (name, id, api, prices)."""
    settings = request.config.stash[SETTINGS]
    name = getattr(request, "param", None)
    if name is None:
        if settings.selected:
            run = ",".join(settings.selected)
            pytest.skip(f"no model of this run fits the marker's models/api (--llm-models={run})")
        pytest.skip(NO_MODELS)
    return settings.model(name)


@pytest.fixture
def llm(
    request: pytest.FixtureRequest, llm_model: ModelSettings, llm_gateway_url: str | None
) -> LLM:
    """Client bound to the current model: chat/complete (and async twins) return Completions."""
    from pytest_llmeval.calls.client import LLM
    from pytest_llmeval.errors import MissingKeyError

    try:
        pool = request.config.stash[RUNTIME].pool
        return LLM(llm_model, pool, llm_gateway_url, test=request.node.nodeid)
    except MissingKeyError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def llm_rival(
    request: pytest.FixtureRequest, llm_model: ModelSettings, llm_gateway_url: str | None
) -> LLM:
    """The other model of a pair: a test that takes it runs once per pair of the run's models
    (`llm` is the first), to compare their answers with `judge.compare`."""
    name = getattr(request, "param", None)
    if name is None:
        pytest.skip("llm_rival needs at least two models in the run")
    settings = request.config.stash[SETTINGS]
    return _client(request.node, settings.model(name), llm_gateway_url, "rival")


@pytest.fixture(scope="session")
def judge_prompts() -> JudgePrompts:
    """The judge's instructions (plain text); override this fixture to change them."""
    from pytest_llmeval.judging.prompts import JudgePrompts

    return JudgePrompts()


@pytest.fixture
def judge(
    request: pytest.FixtureRequest, judge_prompts: JudgePrompts, llm_gateway_url: str | None
) -> Judge:
    """Grades outputs against a rubric with the judge model: `judge(output, rubric)`."""
    return _judge(request.node, judge_prompts, llm_gateway_url)


@pytest.fixture
def similar(request: pytest.FixtureRequest, llm_gateway_url: str | None) -> Similarity:
    """Cosine similarity of two texts' embeddings: `similar(a, b)`, through /v1/embeddings."""
    return _similar(request.node, llm_gateway_url)


NO_JUDGE = (
    "{nodeid} uses the judge fixture, but no judge model is configured: pass --llm-judge=NAME, "
    'set judge = "NAME" in [tool.llmeval], or give the test @pytest.mark.llmeval(judge="NAME")'
)
NO_EMBEDDING = (
    "{nodeid} uses the similar fixture, but no embedding model is configured: pass "
    '--llm-embedding=NAME or set embedding = "NAME" in [tool.llmeval]'
)


def _judge(item: pytest.Item, prompts: JudgePrompts, url: str | None) -> Judge:
    from pytest_llmeval.judging.judge import Judge

    settings = item.config.stash[SETTINGS]
    name = _spec(item).judge or settings.judge
    if name is None:
        pytest.fail(NO_JUDGE.format(nodeid=item.nodeid), pytrace=False)
    model = settings.model(name)
    if model.local is not None and model.base_url is None:
        pytest.fail(
            f"{item.nodeid}: the local judge {name!r} is started only as the run's judge "
            f'(--llm-judge={name} or judge = "{name}" in the config), not from a marker',
            pytrace=False,
        )
    llm = _client(item, model, url, "judge")
    return Judge(llm, prompts, settings.judge_format)


def _similar(item: pytest.Item, url: str | None) -> Similarity:
    from pytest_llmeval.judging.similarity import Similarity

    settings = item.config.stash[SETTINGS]
    if settings.embedding is None:
        pytest.fail(NO_EMBEDDING.format(nodeid=item.nodeid), pytrace=False)
    return Similarity(_client(item, settings.model(settings.embedding), url, "embedding"))


def _client(item: pytest.Item, model: ModelSettings, url: str | None, role: str) -> LLM:
    """A client for the judge or the embedding model, its calls counted under `role`."""
    from pytest_llmeval.calls.client import LLM
    from pytest_llmeval.errors import MissingKeyError

    runtime = item.config.stash.get(RUNTIME, None)
    if runtime is None:
        from pytest_llmeval.calls.runtime import Runtime

        config = item.config
        transcripts = config.getoption("llm_record") != "none"
        runtime = config.stash[RUNTIME] = Runtime(
            config.stash[SETTINGS],
            config.stash.get(BUDGET, None),
            _cache(config),
            None,
            transcripts,
        )
    try:
        return LLM(model, runtime.pool, url, test=item.nodeid, role=role)
    except MissingKeyError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def sandbox_limits() -> Limits:
    """Limits of the `sandbox` fixture (timeout, memory, processes...); override to change."""
    from pytest_llmeval.sandbox.host import Limits

    return Limits()


@pytest.fixture(scope="session")
def sandbox(request: pytest.FixtureRequest, sandbox_limits: Limits) -> Iterator[Sandbox]:
    """Runs generated code against hidden tests in a bubblewrap sandbox (a warm pool)."""
    from pytest_llmeval.errors import SandboxUnavailable
    from pytest_llmeval.sandbox.host import Sandbox

    pool = Sandbox(sandbox_limits, request.config.getoption("llm_sandbox"))
    try:
        pool.start()
    except SandboxUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    with pool:
        yield pool


@pytest.fixture(scope="session")
def llm_fake_gateway() -> Iterator[FakeGateway]:
    """The fake OpenAI-compatible gateway on 127.0.0.1, for offline tests of eval suites."""
    from pytest_llmeval.testing import FakeGateway

    with FakeGateway() as gateway:
        yield gateway


def _model_name(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    name = callspec.params.get("llm_model")
    return name if isinstance(name, str) else None


def _test_name(item: pytest.Item, model: str) -> str:
    callspec = getattr(item, "callspec", None)
    return row_name(item.nodeid, callspec.id if callspec is not None else "", model)


class Sampler:
    """Runs LLM test bodies as samples; registered at configure time so that it comes before
    other plugins' `pytest_pyfunc_call` (anyio, pytest-asyncio), which would run a body once.

    Cases that may run ahead of their turn (see `lookahead`) are launched a bounded number of
    samples ahead and share one window with every other sample of the process; each still
    reports at its turn. An async test that pytest-asyncio or anyio runs is sampled on their
    event loop, with their async fixtures: the item's function is swapped for a sampler
    coroutine that they run.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.window: Window | None = None
        self.fixtures: SessionFixtures | None = None
        self.off: str | None = None
        self.engine: RunAhead | None = None
        self.upcoming: Upcoming | None = None
        self.jobs: dict[str, _Job] = {}
        self.reasons: dict[str, str] = {}
        if RUNTIME not in config.stash:
            return
        from pytest_llmeval.verdict.window import Window

        self.window = Window(config.stash[SETTINGS].concurrency)
        config.stash[PROGRESS] = _progress(config)
        self.off = global_reason(config)
        if self.off is None:
            self.fixtures = SessionFixtures()
            config.pluginmanager.register(self.fixtures, "llmeval-session-fixtures")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        if self.fixtures is None or self.window is None:
            return (yield)
        if not any(_model_name(item) is not None for item in session.items):
            return (yield)  # no LLM test here (or the xdist controller, which runs none)
        from pytest_llmeval.verdict.ahead import RunAhead

        runtime = self.config.stash[RUNTIME]
        self.upcoming = Upcoming(session)
        if self.upcoming.worker and self.upcoming.queue is None:
            self.off = "this pytest-xdist does not show a worker's queue"
        self.engine = RunAhead(self.window, 2 * self.window.size, runtime.aclose_clients)
        try:
            return (yield)
        finally:
            self.engine.close()
            self.engine = None
            self.jobs.clear()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """A case of a settled suite is skipped, unless it was launched ahead: what is in
        flight finishes (overshoot). A case of a sequential suite whose cases differ in their
        markers errs (every process finds that at collection; only a test can report it)."""
        if ORDER_ERROR in item.stash:
            raise ConfigError(item.stash[ORDER_ERROR])
        if item.nodeid not in self.jobs:
            reason = _settled(item)
            if reason is not None:
                pytest.skip(reason)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        """A case launched ahead whose turn never called it (its setup failed) is called off."""
        launched = None if self.engine is None else self.engine.take(nodeid)
        if launched is not None:
            launched.cancel()
            self.jobs.pop(nodeid, None)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        model = _model_name(item)
        if not isinstance(item, pytest.Function) or model is None or not _loop_plugin(item):
            return (yield)
        original = item.obj
        job = _Job.of(item, model, original, self.window)
        job.in_order = self._fill(item)
        item.obj = _sampler(job)
        try:
            return (yield)
        except BaseException as exc:
            job.keep(exc)
            raise
        finally:
            item.obj = original

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        model = _model_name(pyfuncitem)
        if model is None or getattr(inspect.unwrap(pyfuncitem.obj), SAMPLER, False):
            return None  # not an LLM test, or a loop plugin runs the sampler coroutine
        in_order = self._fill(pyfuncitem)
        launched = None if self.engine is None else self.engine.take(pyfuncitem.nodeid)
        if launched is not None:
            job = self.jobs.pop(pyfuncitem.nodeid)
            try:
                sampled = launched.wait()
            except _Settled as exc:
                pytest.skip(str(exc))
            except BaseException as exc:
                job.keep(exc)
                raise
            job.finish(sampled)
            return True
        job = _Job.of(pyfuncitem, model, pyfuncitem.obj, self.window)
        job.in_order = in_order
        if not inspect.iscoroutinefunction(job.function):
            job.finish(job.run_sync())
            return True
        try:
            sampled = pyfuncitem.config.stash[RUNTIME].run(job.run_async())
        except BaseException as exc:
            job.keep(exc)
            raise
        job.finish(sampled)
        return True

    def _fill(self, current: pytest.Function) -> str | None:
        """Launch the cases after `current` that may run ahead, while the lookahead has room;
        returns why `current` itself runs in its turn, if it does."""
        engine, upcoming, fixtures = self.engine, self.upcoming, self.fixtures
        if engine is None or upcoming is None or fixtures is None:
            return self.off
        harmless = self.config.stash[SETTINGS].ahead_fixtures
        for item in upcoming.after(current):
            nodeid = item.nodeid
            if not engine.has_room():
                break
            if engine.seen(nodeid) or nodeid in self.reasons:
                continue
            model = _model_name(item)
            if not isinstance(item, pytest.Function) or model is None:
                continue
            ready = readiness(item, fixtures, _loop_plugin(item), harmless)
            if ready.reason is not None:
                self.reasons[nodeid] = ready.reason
                continue
            if not ready.ready:
                break
            if ORDER_ERROR in item.stash or _settled(item) is not None:
                continue
            try:
                job = _Job.before_turn(item, model, ready.values, self.window)
            except (Exception, pytest.fail.Exception, pytest.skip.Exception) as exc:
                self.reasons[nodeid] = f"could not be prepared ahead ({type(exc).__name__})"
                continue
            self.jobs[nodeid] = job
            if inspect.iscoroutinefunction(job.function):
                engine.launch_async(nodeid, job.plan.cost(), job.run_async)
            else:
                engine.launch(nodeid, job.plan.cost(), job.run_sync)
        return self.reasons.get(current.nodeid, self.off)


SAMPLER = "__llmeval_sampler__"


class _Settled(Exception):
    """A case launched ahead whose suite settled before it started: skipped at its turn."""


def _progress(config: pytest.Config) -> SuiteProgress:
    """The run's shared progress of suites that stop over cases, with the baseline's cases of
    every suite (not under replay, which must ask for no more cases than its recording)."""
    from pytest_llmeval.report.suites import by_suite, outcomes
    from pytest_llmeval.suite_progress import SuiteProgress

    runtime = config.stash[RUNTIME]
    baseline = config.stash.get(BASELINE, None)
    bases = {}
    if baseline is not None and not (runtime.cache is not None and runtime.cache.replay):
        bases = {
            (suite, model): {case: outcomes(row) for case, row in cases.items()}
            for suite, models in by_suite(baseline["tests"]).items()
            for model, cases in models.items()
        }
    run_dir = config.stash.get(RUN_DIR, None)
    return SuiteProgress(None if run_dir is None else run_dir / "suites.json", bases)


def _settled(item: pytest.Item) -> str | None:
    """Why a case of a suite that stops over cases need not run: its suite x model settled."""
    from pytest_llmeval.report.suites import suite_name

    model = _model_name(item)
    if model is None or ORDER not in item.stash or PROGRESS not in item.config.stash:
        return None
    plan = _item_plan(item, model)
    suite = suite_name(_test_name(item, model))
    if suite is None or plan.order is None or not plan.stops_suite:
        return None
    stop = item.config.stash[PROGRESS].settled(suite, model, plan)
    if stop is None:
        return None
    return (
        f"llmeval: suite {suite.rpartition('::')[2]} settled after {stop.judged} of "
        f"{plan.order.cases} cases ({stop.bound})"
    )


def _loop_plugin(item: pytest.Function) -> bool:
    """Will pytest-asyncio or anyio run this coroutine test on their own loop?"""
    if not inspect.iscoroutinefunction(item.obj):
        return False
    manager = item.config.pluginmanager
    if "anyio_backend" in item.fixturenames and manager.hasplugin("anyio"):
        return True
    return item.get_closest_marker("asyncio") is not None and manager.hasplugin("asyncio")


def _sampler(job: _Job) -> Callable[..., Coroutine[Any, Any, None]]:
    """A coroutine function that samples the job's test on the loop that awaits it."""

    async def sample(**_: Any) -> None:
        try:
            sampled = await job.run_async()
        finally:
            await job.runtime.pool.aclose()  # the plugin's loop may close after this test
        job.finish(sampled)

    setattr(sample, SAMPLER, True)
    return sample


class _Job:
    """One test x model to sample: its plan, body, classifier and baseline gate."""

    def __init__(
        self,
        item: pytest.Function,
        model: str,
        function: Callable[..., Any],
        kwargs: dict[str, Any],
        window: Window | None,
        ahead: bool = False,
    ) -> None:
        config = item.config
        self.item, self.model, self.function = item, model, function
        self.kwargs, self.window, self.ahead = kwargs, window, ahead
        self.in_order: str | None = None
        self.settings, self.runtime = config.stash[SETTINGS], config.stash[RUNTIME]
        self.plan = _item_plan(item, model)
        self.subject = _subject(item)
        self.test = _test_name(item, model)
        self.base = config.stash.get(BASELINE_ROWS, {}).get((self.test, model))
        replaying = self.runtime.cache is not None and self.runtime.cache.replay
        updating = bool(config.getoption("llm_update_baseline"))
        self.stop = regression_gate(self.base, self.plan, replaying, futile=not updating)
        self.ordered = self.runtime.cache is not None  # reruns ask for the samples it holds
        self.classifier = _classifier(config, self.runtime)
        self.partial: Sampled | None = None

    @classmethod
    def of(
        cls, item: pytest.Function, model: str, function: Callable[..., Any], window: Window | None
    ) -> _Job:
        """The job of a case whose fixtures pytest has set up (it runs in its turn)."""
        backend = item.funcargs.get("anyio_backend", "asyncio")
        if inspect.iscoroutinefunction(function) and backend not in ("asyncio", ("asyncio", {})):
            pytest.fail(
                f"{item.nodeid}: llmeval samples async tests on an asyncio loop; "
                f"the anyio backend {backend!r} is not supported",
                pytrace=False,
            )
        names = inspect.signature(function).parameters
        kwargs = {name: item.funcargs[name] for name in names if name in item.funcargs}
        return cls(item, model, function, kwargs, window)

    @classmethod
    def before_turn(
        cls, item: pytest.Function, model: str, values: dict[str, Any], window: Window | None
    ) -> _Job:
        """The job of a case that runs before its turn: `llm` and `llm_model` are built as the
        fixtures would build them; every other argument is a parameter or a session value."""
        settings = item.config.stash[SETTINGS]
        url = values.get("llm_gateway_url", settings.base_url)
        kwargs: dict[str, Any] = {}
        for name in inspect.signature(item.obj).parameters:
            if name == "llm_model":
                kwargs[name] = settings.model(model)
            elif name == "llm":
                from pytest_llmeval.calls.client import LLM

                pool = item.config.stash[RUNTIME].pool
                kwargs[name] = LLM(settings.model(model), pool, url, test=item.nodeid)
            elif name == "judge":
                kwargs[name] = _judge(item, values["judge_prompts"], url)
            elif name == "similar":
                kwargs[name] = _similar(item, url)
            elif name in values:
                kwargs[name] = values[name]
        return cls(item, model, item.obj, kwargs, window, ahead=True)

    def run_sync(self, stop: Future[None] | None = None) -> Sampled:
        """Sample on threads; a job run ahead runs its last sample on its own thread."""
        from pytest_llmeval.verdict.sampling import run_sync

        self._check_settled()
        width = self.settings.concurrency
        body = lambda: self.function(**self.kwargs)  # noqa: E731
        return self._publish(
            run_sync(
                self.plan, body, width, self.classifier, self.stop, self.ordered, self.aborted,
                self.window, stop, inline=self.ahead,
            )
        )  # fmt: skip

    async def run_async(self) -> Sampled:
        from pytest_llmeval.verdict.sampling import run_async

        self._check_settled()
        width = self.settings.concurrency
        body = lambda: self.function(**self.kwargs)  # noqa: E731
        return self._publish(
            await run_async(
                self.plan, body, width, self.classifier, self.stop, self.ordered, self.aborted,
                self.window,
            )
        )  # fmt: skip

    def _check_settled(self) -> None:
        """A job run ahead that waited while its suite settled does not start."""
        reason = _settled(self.item) if self.ahead else None
        if reason is not None:
            raise _Settled(reason)

    def _publish(self, sampled: Sampled) -> Sampled:
        """Share a finished case of a suite that stops over cases with the run's processes."""
        from pytest_llmeval.report.suites import case_name, suite_name

        suite = suite_name(self.test)
        if self.plan.order is not None and self.plan.stops_suite and suite is not None:
            valid = [r.outcome == "passed" for r in sampled.records if r.outcome != "error"]
            case = case_name(self.test)  # as collection named it for the canonical order
            self.item.config.stash[PROGRESS].record(suite, self.model, case, self.plan, valid)
        return sampled

    def aborted(self, sampled: Sampled, exc: BaseException) -> None:
        """Sampling was cut short; a cancelled loop says why only when the loop returns, and a
        case run ahead hears why from whoever consumes it at its turn."""
        import asyncio

        self.partial = sampled
        if not self.ahead and not isinstance(exc, asyncio.CancelledError):
            self.keep(exc)

    def keep(self, exc: BaseException) -> None:
        """Keep the samples of a test cut short by Ctrl-C or by another plugin (a timeout)."""
        import asyncio

        sampled, self.partial = self.partial, None
        if sampled is None:
            return
        interrupt = isinstance(exc, KeyboardInterrupt | SystemExit | asyncio.CancelledError)
        stopped_by = (
            self.classifier.harness(exc) if isinstance(exc, pytest.fail.Exception) else None
        )
        cut = interruption(len(sampled.records), interrupt, stopped_by, str(exc).strip())
        if cut is None:
            return
        verdict, message = cut
        result = self._result(sampled, message)
        result["verdict"] = verdict
        self.item.stash[RESULT] = result
        run_dir = self.item.config.stash.get(RUN_DIR, None)
        if verdict == "interrupted" and run_dir is not None:  # no report will carry it
            handle, _ = tempfile.mkstemp(prefix="interrupted-", suffix=".json", dir=run_dir)
            with os.fdopen(handle, "w") as out:
                json.dump(result, out)
        if verdict == "error":
            raise pytest.fail.Exception(message, pytrace=False) from None

    def _result(self, sampled: Sampled, message: str | None) -> Result:
        from pytest_llmeval.report.build import sampled_result

        model = self.settings.model(self.model).to_dict()
        record = self.item.config.getoption("llm_record")
        result = sampled_result(self.item.nodeid, self.test, model, sampled, message, record)
        if self.subject is not None:
            result["subject"] = self.subject
        if self.in_order is not None:
            result["in_order"] = self.in_order
        return result

    def finish(self, sampled: Sampled) -> None:
        """Record the result and turn the verdict (and the baseline gate) into the outcome."""
        from pytest_llmeval.report.baseline import compare_row, regression_message

        config, item = self.item.config, self.item
        judged = None
        if self.plan.judged:
            sampled, judged = _corrected(config, sampled)
        message = failure_message(sampled, self.classifier, item.path)
        result = self._result(sampled, message)
        if judged is not None:
            result["judged"] = judged
        item.stash[RESULT] = result
        regression = None if self.base is None else compare_row(self.base, result)
        item.user_properties.extend(junit_properties(result, regression))
        regressed = None
        if regression is not None and regression["regressed"]:
            regressed = regression_message(regression)
        fail_on = config.getoption("llm_fail_on")
        decided = outcome(sampled, message, regressed, fail_on, BASELINE in config.stash)
        if decided.failed:
            result["message"] = decided.message
        if decided.reraise is not None:
            raise decided.reraise
        if decided.failed:
            pytest.fail(decided.message or "", pytrace=False)


def _write_html(path: Path, report: Report, history: list[HistorySeries]) -> None:
    """The HTML report; `history` holds its rows' series from `--llm-history`."""
    from pytest_llmeval.report.build import write_text
    from pytest_llmeval.report.html_report import html

    write_text(path, html(report, history))


def _corrected(config: pytest.Config, sampled: Sampled) -> tuple[Sampled, JudgedVerdict | None]:
    """A judged test's verdict about the model's true rate when the judge is calibrated."""
    from pytest_llmeval.judging.calibration import CalibrationStore
    from pytest_llmeval.judging.correction import correct

    store = config.stash.get(CALIBRATIONS, None)
    if store is None:
        path = config.rootpath / config.stash[SETTINGS].calibration
        store = config.stash[CALIBRATIONS] = CalibrationStore(path)
    try:
        correction = correct(sampled.records, sampled.plan, store)
    except ConfigError as exc:
        pytest.fail(str(exc), pytrace=False)
    if correction is None:
        return sampled, None
    if sampled.verdict == "error":  # too few valid samples: that is the message, not the judge
        return sampled, correction.info
    verdict = correction.verdict or sampled.verdict
    return dataclasses.replace(sampled, verdict=verdict, judged=correction.info), correction.info


def _classifier(config: pytest.Config, runtime: Runtime) -> Classifier:
    from pytest_llmeval.errors import LLMUsageError, SandboxError, call_errors, cause
    from pytest_llmeval.verdict.origin import Machinery
    from pytest_llmeval.verdict.sampling import Classifier

    machinery = config.stash.get(MACHINERY, None)
    if machinery is None:
        import _pytest
        import pluggy

        from pytest_llmeval import __name__ as package_name

        package = sys.modules[package_name]
        plugins = config.pluginmanager.get_plugins()
        machinery = Machinery.of([_pytest, pluggy, package], plugins)
        config.stash[MACHINERY] = machinery
    return Classifier(
        (*call_errors(), SandboxError),
        failures=(pytest.fail.Exception,),
        controls=(pytest.xfail.Exception, LLMUsageError),
        redact=runtime.pool.redact,
        cause=cause,
        origin=machinery.origin,
    )


def _subject(item: pytest.Function) -> str | None:
    """The case's `llmeval_subject` mark (`params()` sets it from a task's subject)."""
    marker = item.get_closest_marker("llmeval_subject")
    if marker is None:
        return None
    if len(marker.args) != 1 or not isinstance(marker.args[0], str):
        pytest.fail(f"{item.nodeid}: llmeval_subject takes one string, the subject", pytrace=False)
    return str(marker.args[0])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    model = _model_name(item)
    if model is not None:
        if report.longrepr is not None:
            _redact_longrepr(report, item.config.stash[RUNTIME])
        if call.when == "call" and RESULT in item.stash:
            report.__dict__[KEY] = item.stash[RESULT]
        elif call.when == "setup":
            settings = item.config.stash[SETTINGS]
            plan = _item_plan(item, model)
            report.__dict__[KEY] = {
                "test": _test_name(item, model),
                "model": settings.model(model).to_dict(),
                "plan": plan.to_dict(),
            }
    return report


def _redact_longrepr(report: pytest.TestReport, runtime: Runtime) -> None:
    """A traceback that quotes an API key (e.g. a 401 body) is shown as text with the key hidden."""
    text = str(report.longrepr)
    redacted = runtime.redact(text)
    if redacted != text:
        report.longrepr = redacted


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, str] | None:
    data = report.__dict__.get(KEY)
    if report.when == "call" and report.failed and data and data.get("verdict") == "error":
        return "error", "E", "ERROR"
    return None


class Reporter:
    """Controller-side aggregation: the one place where results from every worker meet."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: dict[str, Result] = {}
        self.started: dict[str, Started] = {}
        self.models: dict[str, ModelInfo] = {}
        self._report: Report | None = None
        self.baseline_written = False
        self.suite_failures: list[str] = []
        self.history_note: tuple[str, bool] | None = None  # the summary's line, and if it is bad

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = report.__dict__.get(KEY)
        nodeid = report.nodeid
        if report.when == "setup" and data:
            self.started[nodeid] = data
            self.models[data["model"]["name"]] = data["model"]
            if report.failed:
                self._broken(nodeid, "setup error", report.longreprtext)
        elif report.when == "call" and data:
            self.results[nodeid] = data
        elif report.when == "call" and report.failed and nodeid in self.started:
            self._broken(nodeid, "no samples", report.longreprtext)
        elif report.when not in ("setup", "call", "teardown") and nodeid in self.started:
            self._broken(nodeid, "crashed", report.longreprtext)

    def _broken(self, nodeid: str, reason: str, text: str) -> None:
        from pytest_llmeval.report.build import broken_result

        start = self.started[nodeid]
        lines = [line for line in text.strip().splitlines() if line.strip()]
        message = lines[-1] if lines else reason
        self.results[nodeid] = broken_result(
            nodeid, start["test"], start["model"], start["plan"], reason, message
        )

    def report(self) -> Report:
        if self._report is None:
            from pytest_llmeval.report.baseline import compare
            from pytest_llmeval.report.build import build_report

            budget = self.config.stash.get(BUDGET, None)
            spend = None if budget is None else (budget.limit_usd, budget.spent())
            report = build_report(self.results.values(), self.models, spend)
            report["record"] = self.config.getoption("llm_record")
            baseline = self.config.stash.get(BASELINE, None)
            if baseline is not None:
                source = self.config.getoption("llm_baseline")
                report["baseline"] = compare(report, baseline, source)
            self._report = report
        return self._report

    def _interrupted(self) -> None:
        """Tests cut short by Ctrl-C: their samples, kept by whichever process ran them."""
        run_dir = self.config.stash.get(RUN_DIR, None)
        for path in sorted(run_dir.glob("interrupted-*.json")) if run_dir else ():
            result = json.loads(path.read_text())
            self.results.setdefault(result["nodeid"], result)
            self._report = None

    @pytest.hookimpl(trylast=True)  # after xdist has stopped the workers
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._interrupted()
        self._judge_suites(session)
        option = self.config.getoption
        wanted = [n for n in ("llm_report", "llm_report_md", "llm_report_html") if option(n)]
        # An interrupted run or one without LLM results never replaces a baseline, nor joins
        # the history.
        finished = bool(self.results) and session.exitstatus in (
            pytest.ExitCode.OK,
            pytest.ExitCode.TESTS_FAILED,
        )
        if HISTORY in self.config.stash and self.results:
            self._append_history(finished)
        update = option("llm_update_baseline") and finished
        if not wanted and not update:
            return
        from pytest_llmeval.report.build import write_report, write_text
        from pytest_llmeval.report.render import markdown

        writers: dict[str, Callable[[Report, Path], None]] = {
            "llm_report": write_report,
            "llm_report_md": lambda report, path: write_text(path, markdown(report)),
            "llm_report_html": lambda report, path: _write_html(
                path, report, self._history_series(report)
            ),
        }
        for name in wanted:
            writers[name](self.report(), Path(option(name)))
        if update:
            fresh = {k: v for k, v in self.report().items() if k != "baseline"}
            write_report(fresh, Path(option("llm_baseline")), indent=2)
            self.baseline_written = True

    def _append_history(self, finished: bool) -> None:
        """Add a finished run to the history; say in the summary where, or why not."""
        from pytest_llmeval.report.drift import WINDOW, drifts
        from pytest_llmeval.report.history import append, current_commit, runs, tracks

        path = self.config.stash[HISTORY]
        shown = self.config.getoption("llm_history") or self.config.stash[SETTINGS].history
        if not finished:
            self.history_note = (f"llmeval history NOT appended (run interrupted): {shown}", True)
            return
        commit = current_commit(self.config.rootpath, os.environ)
        try:
            run = append(path, self.report(), commit)
        except HistoryError as exc:
            self.history_note = (f"llmeval history NOT appended: {exc}", True)
            return
        line = f"llmeval history: run {run} appended to {shown}"
        line += " (no commit)" if commit is None else f" (commit {commit.sha[:8]})"
        try:
            latest = [r.id for r in runs(path, WINDOW + 1)]
            found = drifts(tracks(path, WINDOW + 1), latest)
        except HistoryError:
            found = []  # appended; another writer may have broken it since
        if any(d.reason is None for d in found):
            worse = sum(d.direction == "worse" for d in found)
            better = sum(d.direction == "better" for d in found)
            line += (
                f"; drift against up to {WINDOW} earlier runs: {worse} worse, {better} better "
                f"(python -m pytest_llmeval history {shlex.quote(str(shown))})"
            )
        self.history_note = (line, False)

    def _history_series(self, report: Report) -> list[HistorySeries]:
        """This report's rows' series in the history, for the HTML report."""
        from pytest_llmeval.report.history import series_for

        path = self.config.stash.get(HISTORY, None)
        if path is None:
            return []
        try:
            return series_for(path, report)
        except HistoryError:
            return []  # the summary says why the history is unusable

    def _judge_suites(self, session: pytest.Session) -> None:
        """Gated suites are judged once all their cases have reported: a failed one fails the
        run (its cases only observed)."""
        if not any(result["plan"].get("suite") for result in self.results.values()):
            return
        from pytest_llmeval.report.baseline import suite_failures

        fail_on = self.config.getoption("llm_fail_on")
        self.suite_failures = suite_failures(self.report(), fail_on)
        if self.suite_failures and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results:
            return
        from pytest_llmeval.report.baseline import summary_lines
        from pytest_llmeval.report.build import table_lines

        terminalreporter.section("llmeval")
        report = self.report()
        for line in table_lines(report):
            terminalreporter.write_line(line)
        if "baseline" in report:
            for line in summary_lines(report["baseline"]):
                terminalreporter.write_line(line)
        for line in self.suite_failures:
            if line.startswith("FAILED"):  # regressions are in the baseline lines above
                terminalreporter.write_line(line, red=True, bold=True)
        for name, kind in (
            ("llm_report", "JSON report"),
            ("llm_report_md", "Markdown report"),
            ("llm_report_html", "HTML report"),
        ):
            if self.config.getoption(name):
                terminalreporter.write_line(f"llmeval {kind}: {self.config.getoption(name)}")
        if self.history_note is not None:
            line, bad = self.history_note
            terminalreporter.write_line(line, red=bad, bold=bad)
        if self.config.getoption("llm_update_baseline"):
            done = "updated" if self.baseline_written else "NOT updated (run interrupted)"
            terminalreporter.write_line(
                f"llmeval baseline {done}: {self.config.getoption('llm_baseline')}"
            )
