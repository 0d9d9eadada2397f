#!/usr/bin/env python3
# Copied verbatim (below this header) from ../shared/tools/validate_realtime_events.py so CI on a
# clean clone does not need ../shared; keep in sync with that file (issue 5, Conformance).
"""Validate OpenAI Realtime (GA) wire events against openai-python's generated pydantic models.

usage: validate_realtime_events.py {client|server} [--strict] < events.jsonl
  - one JSON event per line
  - --strict: also fail on keys the models do not declare (openai's BaseModel uses extra="allow",
    so plain validation silently accepts unknown/beta-only keys such as a top-level session.voice).
Requires: pip install "openai>=1.107.0" (first release with the final GA shape).
"""
import json
import sys

import pydantic
from pydantic import TypeAdapter
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent

ADAPTERS = {"client": TypeAdapter(RealtimeClientEvent), "server": TypeAdapter(RealtimeServerEvent)}

# Keys the live GA server sends that the generated models do not declare.
SERVER_EXTRA_OK = {"$.session.object", "$.session.id", "$.session.expires_at", "$.obfuscation"}


def undeclared_keys(obj, path="$"):
    if isinstance(obj, pydantic.BaseModel):
        for k in obj.model_extra or {}:
            yield f"{path}.{k}"
        for k in type(obj).model_fields:
            yield from undeclared_keys(getattr(obj, k), f"{path}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from undeclared_keys(v, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from undeclared_keys(v, f"{path}.{k}")


def main() -> int:
    side = sys.argv[1]
    strict = "--strict" in sys.argv
    adapter = ADAPTERS[side]
    bad = 0
    for n, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            ev = adapter.validate_json(line)
        except pydantic.ValidationError as e:
            bad += 1
            print(f"line {n}: INVALID ({e.error_count()} union errors) type={json.loads(line).get('type')!r}")
            continue
        extra = [p for p in undeclared_keys(ev) if not (side == "server" and p in SERVER_EXTRA_OK)]
        if strict and extra:
            bad += 1
            print(f"line {n}: UNDECLARED KEYS {extra} type={ev.type!r}")
    print(f"{bad} invalid")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
