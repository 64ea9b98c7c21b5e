"""The report schema's constants, and call records that write every field in order."""

from __future__ import annotations

import json
import typing
from dataclasses import fields

from pytest_llmeval.report import schema
from pytest_llmeval.verdict.records import CallRecord


def test_call_records_write_every_field_in_order() -> None:
    """`CallRecord.to_dict` spells its fields out: none may be added without it (or `Call`);
    the role is written only for calls that are not the model's own; the exchange goes to the
    sample's transcript, not to the call."""
    assert "role" not in CallRecord("chat", "abc", 0.5).to_dict()
    record = CallRecord("chat", "abc", 0.5, retry_causes=("rate_limit",), role="judge")
    written = record.to_dict()
    transcript = ("exchange", "cut")
    assert list(written) == [f.name for f in fields(CallRecord) if f.name not in transcript]
    assert list(written) == list(typing.get_type_hints(schema.Call))
    assert written["retry_causes"] == ["rate_limit"]
    assert json.loads(json.dumps(written)) == written


def test_the_constants_are_the_ones_reports_carry() -> None:
    assert (schema.SCHEMA, schema.VERSION) == ("pytest-llmeval/report", 1)
