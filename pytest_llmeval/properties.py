"""Hypothesis settings for property-based tests whose body calls a model (`@given` + `llm`).

Each llmeval sample runs the whole `@given` test, i.e. up to `max_examples` model calls, so the
cost of one test is samples x max_examples calls. Imports Hypothesis only when called.
"""

from __future__ import annotations

from typing import Any


def llm_settings(max_examples: int = 10, **overrides: Any) -> Any:
    """`hypothesis.settings` fit for model calls: few examples, no deadline, no shrinking (each
    shrink step is another call, and model answers do not replay), no example database, and
    no function-scoped-fixture health check (the `llm` client is safe to share)."""
    from hypothesis import HealthCheck, Phase, settings

    return settings(
        max_examples=max_examples,
        deadline=None,
        phases=(Phase.explicit, Phase.generate),
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        **overrides,
    )
