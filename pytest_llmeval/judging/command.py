"""`python -m pytest_llmeval judge-calibrate FILE`: measure the configured judge's error on a
labelled set, print the figures with exact intervals, and store them for judged runs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pytest_llmeval.config import find_config_file, load_settings
from pytest_llmeval.errors import (
    ConfigError,
    DatasetError,
    LocalServerError,
    MissingKeyError,
    call_errors,
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "judge-calibrate",
        help="run the judge on human-labelled outputs; print and store its measured error",
    )
    parser.add_argument("file", metavar="FILE", help="JSON Lines: rubric, output, label, ...")
    parser.add_argument("--judge", metavar="NAME", help="judge model (default: judge in config)")
    parser.add_argument("--runs", type=int, default=3, help="judgements per item (default 3)")
    parser.add_argument("--config", metavar="PATH", help="config file (default: found in .)")
    parser.add_argument("--base-url", metavar="URL", help="gateway URL (overrides the config)")
    parser.add_argument(
        "--store", metavar="PATH", help="calibration file (default: calibration in the config)"
    )


def calibrate_command(args: argparse.Namespace) -> int:
    from pytest_llmeval.calls.client import LLM, ClientPool
    from pytest_llmeval.judging.calibration import CalibrationStore, calibrate, load_labelled
    from pytest_llmeval.judging.judge import Judge
    from pytest_llmeval.judging.prompts import JudgePrompts

    try:
        path = Path(args.config) if args.config else find_config_file(Path.cwd())
        root = path.parent if path is not None else Path.cwd()  # where pytest's rootdir is
        settings = load_settings(path, os.environ, base_url=args.base_url, judge=args.judge)
        if settings.judge is None:
            raise ConfigError('no judge model: pass --judge NAME or set judge = "NAME" in config')
        if args.runs < 1:
            raise ConfigError("--runs must be at least 1")
        items = load_labelled(Path(args.file))
    except (ConfigError, DatasetError) as exc:
        print(f"llmeval judge-calibrate: {exc}", file=sys.stderr)
        return 2
    servers = []
    name = settings.judge
    pool = ClientPool(settings, os.environ)
    try:
        model = settings.model(name)
        if model.local is not None:
            from pytest_llmeval.local.server import start_servers

            servers = start_servers([model], root, os.environ)
            settings = settings.with_urls({s.name: s.base_url for s in servers})
            model = settings.model(name)
            pool.settings = settings
        llm = LLM(model, pool, settings.base_url, role="judge")
        judge = Judge(llm, JudgePrompts(), settings.judge_format)
        figures = calibrate(
            lambda item: (
                judge(
                    item.output, item.rubric, question=item.question, reference=item.reference
                ).passed
            ),
            items,
            judge=model.name,
            judge_model_id=model.model_id,
            fingerprint=judge.fingerprint,
            set_name=str(args.file),
            runs=args.runs,
            workers=settings.concurrency,
            errors=call_errors(),
        )
    except (LocalServerError, MissingKeyError) as exc:
        print(f"llmeval judge-calibrate: {exc}", file=sys.stderr)
        return 2
    finally:
        pool.close()
        if servers:
            from pytest_llmeval.local.server import stop_servers

            stop_servers(servers)
    if not any(f.counts.positives + f.counts.negatives for f in figures):
        print(
            f"llmeval judge-calibrate: {model.name} gave no usable judgement on any item "
            f"({sum(f.errors for f in figures)} errors: failed calls or answers outside the "
            "schema); check the gateway (--base-url) and the judge model. Nothing stored.",
            file=sys.stderr,
        )
        return 2
    for f in figures:
        print("\n".join(f.lines()))
    store = CalibrationStore(Path(args.store) if args.store else root / settings.calibration)
    try:
        store.save(figures)
    except ConfigError as exc:
        print(f"llmeval judge-calibrate: {exc}", file=sys.stderr)
        return 2
    print(f"llmeval: {len(figures)} calibration(s) of {model.name} stored in {store.path}")
    return 0
