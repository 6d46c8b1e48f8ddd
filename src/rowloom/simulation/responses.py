"""Deterministic simulated response content.

Every answer is a pure function of (model id, messages or input text, seed, sample key) and, for
structured output, the requested schema: never of timing, arrival order or attempt count, so a
retried request gets the same answer and two runs (or two processes) produce identical data.
The optional sample key names the cell a request serves (in process, the run sets it), so rows
with the same prompt get different answers, as from a sampling model.

- Chat: a plausible word sequence, at most `max_tokens` words (one word counts as one token).
- Code: when the prompt asks for a fenced block in a language, one such block that parses
  (see `rowloom.simulation.code`).
- Structured (`response_format` `json_schema` in OpenAI's shape, or `json_object` with an optional
  llama.cpp-style `schema`): a JSON document valid for the schema (objects, strings with
  enum/length/format, numbers with bounds and multipleOf, arrays, enum/const, anyOf/oneOf/allOf,
  local `$ref`s as pydantic's `model_json_schema()` emits them). `pattern` is not honoured.
- Embeddings: unit-norm float vectors of a fixed dimension derived from each input text.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rowloom.simulation.code import code_language, simulated_code

__all__ = [
    "SimulatedChatAnswer",
    "SimulatedResponses",
    "generate_json",
    "request_digest",
    "schema_from_response_format",
]

_VOCABULARY_TEXT = (
    "the a of and to in is that it for on with as by this from at which be are was an or "
    "river mountain valley ocean forest city market garden bridge signal system network model "
    "data sample record value answer question reason example result pattern method process "
    "quickly carefully often rarely usually clearly simply together within across between "
    "bright quiet ancient modern careful useful simple complex steady gentle rapid distant "
    "build measure explain compare describe improve choose follow gather notice balance shape "
    "water light stone metal paper glass music story language number color season journey"
)
_VOCABULARY = tuple(_VOCABULARY_TEXT.split())
_WORD_RE = re.compile(r"[A-Za-z]{4,}")
_DEFAULT_MAX_WORDS = 48
_MAX_DEPTH = 6


def request_digest(seed: int, model: str, parts: Iterable[str]) -> int:
    """A stable 128-bit integer over the seed, the model id and the ordered text parts."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(seed).encode())
    h.update(b"\x00")
    h.update(model.encode())
    for part in parts:
        h.update(b"\x00")
        h.update(part.encode("utf-8", "surrogatepass"))
    return int.from_bytes(h.digest(), "big")


def _message_parts(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    parts: list[str] = []
    for message in messages:
        parts.append(str(message.get("role", "")))
        content = message.get("content", "")
        parts.append(content if isinstance(content, str) else json.dumps(content, sort_keys=True))
    return parts


def schema_from_response_format(
    response_format: Mapping[str, Any] | None,
) -> tuple[bool, Mapping[str, Any] | None]:
    """(wants JSON, schema or None) for an OpenAI or llama.cpp style `response_format`."""
    if not response_format:
        return False, None
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        return True, schema if isinstance(schema, Mapping) else None
    if kind == "json_object":
        schema = response_format.get("schema")
        return True, schema if isinstance(schema, Mapping) else None
    return False, None


@dataclass(frozen=True, slots=True)
class SimulatedChatAnswer:
    """The text of one simulated completion and its token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int


class SimulatedResponses:
    """Produces chat text, structured JSON and embeddings deterministically.

    `invalid_json_rate` (a test knob) makes that fraction of structured answers deliberately
    invalid (truncated JSON or a schema violation); which requests are chosen is also a pure
    function of the request, so a corrective retry with changed messages gets a fresh draw.
    """

    __slots__ = ("_embedding_dimensions", "_invalid_json_rate", "_seed")

    def __init__(
        self, *, seed: int = 0, embedding_dimensions: int = 16, invalid_json_rate: float = 0.0
    ) -> None:
        if not 0.0 <= invalid_json_rate <= 1.0:
            raise ValueError("invalid_json_rate must be within [0, 1]")
        if embedding_dimensions < 1:
            raise ValueError("embedding_dimensions must be >= 1")
        self._seed = seed
        self._embedding_dimensions = embedding_dimensions
        self._invalid_json_rate = invalid_json_rate

    def chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        sample_key: str | None = None,
    ) -> SimulatedChatAnswer:
        """The answer to one chat request (JSON text when `response_format` asks for it, a
        fenced code block when the prompt asks for code); `sample_key` varies it per cell."""
        parts = _message_parts(messages)
        keyed = parts if sample_key is None else [*parts, "\x00sample", sample_key]
        digest = request_digest(self._seed, model, keyed)
        rng = random.Random(digest)
        prompt_tokens = sum(len(p.split()) for p in parts) + 1
        wants_json, schema = schema_from_response_format(response_format)
        if wants_json:
            text = self._structured_text(rng, schema, parts)
            return SimulatedChatAnswer(text, prompt_tokens, max(1, len(text) // 4))
        lang = code_language(messages)
        if lang is not None:
            text = simulated_code(lang, rng)
            return SimulatedChatAnswer(text, prompt_tokens, max(1, len(text) // 4))
        words = _words(rng, parts, max_tokens)
        return SimulatedChatAnswer(_sentence(words), prompt_tokens, len(words))

    def embed(
        self, model: str, inputs: Sequence[str], *, dimensions: int | None = None
    ) -> tuple[tuple[float, ...], ...]:
        """One unit-norm vector per input, of `dimensions` (default: the configured size)."""
        dim = self._embedding_dimensions if dimensions is None else int(dimensions)
        if dim < 1:
            raise ValueError("dimensions must be >= 1")
        vectors = []
        for text in inputs:
            gen = np.random.default_rng(request_digest(self._seed, model, ("embed", text)))
            vec = gen.standard_normal(dim)
            vec /= float(np.linalg.norm(vec)) or 1.0
            vectors.append(tuple(float(x) for x in vec))
        return tuple(vectors)

    def _structured_text(
        self, rng: random.Random, schema: Mapping[str, Any] | None, parts: Sequence[str]
    ) -> str:
        if schema is None:
            value: Any = {"response": _sentence(_words(rng, parts, 16))}
        else:
            value = generate_json(schema, rng)
        text = json.dumps(value, ensure_ascii=False)
        if self._invalid_json_rate and rng.random() < self._invalid_json_rate:
            if rng.random() < 0.5 or not isinstance(value, dict):
                return text[: max(1, len(text) // 2)]  # not parseable
            return json.dumps({"__invalid__": True, **{k: [v] for k, v in value.items()}})
        return text


def _words(rng: random.Random, parts: Sequence[str], max_tokens: int | None) -> list[str]:
    cap = _DEFAULT_MAX_WORDS if max_tokens is None else max(1, max_tokens)
    count = min(cap, rng.randint(8, _DEFAULT_MAX_WORDS))
    prompt_words = [w.lower() for w in _WORD_RE.findall(parts[-1] if parts else "")][:64]
    out = []
    for _ in range(count):
        if prompt_words and rng.random() < 0.2:
            out.append(rng.choice(prompt_words))
        else:
            out.append(rng.choice(_VOCABULARY))
    return out


def _sentence(words: Sequence[str]) -> str:
    if not words:
        return ""
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


# ---------------------------------------------------------------------------- JSON from schema


def generate_json(schema: Mapping[str, Any], rng: random.Random) -> Any:
    """A value valid for `schema` (see the module docstring for the supported keywords)."""
    return _Generator(schema, rng).value(schema, 0)


class _Generator:
    __slots__ = ("_rng", "_root")

    def __init__(self, root: Mapping[str, Any], rng: random.Random) -> None:
        self._root = root
        self._rng = rng

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """Follow `$ref` chains (local JSON pointers), merging sibling keywords."""
        seen = 0
        while "$ref" in schema and seen < 32:
            target = self._pointer(str(schema["$ref"]))
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **siblings}
            seen += 1
        return schema

    def _pointer(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref is supported, got {ref!r}")
        node: Any = self._root
        for token in ref[1:].split("/")[1:]:
            node = node[token.replace("~1", "/").replace("~0", "~")]
        if not isinstance(node, Mapping):
            raise ValueError(f"$ref {ref!r} does not point to a schema")
        return node

    def value(self, schema: Mapping[str, Any] | bool, depth: int) -> Any:
        if schema is True or schema is False:
            return None
        schema = self.resolve(schema)
        rng = self._rng
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return rng.choice(list(schema["enum"]))
        if "allOf" in schema:
            return self.value(self._merge_all_of(schema), depth)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self._one_of(schema, key, depth)
        kind = _schema_type(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "integer":
            return _integer(schema, rng)
        if kind == "number":
            return _number(schema, rng)
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "null":
            return None
        return _string(schema, rng)

    def _merge_all_of(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = self.resolve(part)
            if "allOf" in part:
                part = self._merge_all_of(part)
            for key, val in part.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **val}
                elif key == "required":
                    merged["required"] = list(dict.fromkeys([*merged.get("required", []), *val]))
                else:
                    merged.setdefault(key, val)
        return merged

    def _one_of(self, schema: Mapping[str, Any], key: str, depth: int) -> Any:
        options = [self.resolve(o) for o in schema[key] if isinstance(o, Mapping)]
        rest = {k: v for k, v in schema.items() if k not in (key, "discriminator")}
        if depth >= _MAX_DEPTH:  # prefer a terminal branch when deep in a recursive schema
            options.sort(key=lambda o: _schema_type(o) not in ("null", "string", "integer"))
        for index, option in enumerate(options):
            candidate = self.value({**rest, **option}, depth)
            if key == "anyOf":
                return candidate
            others = options[:index] + options[index + 1 :]
            if not any(self.matches(candidate, other, 0) for other in others):
                return candidate
        return self.value({**rest, **options[0]}, depth) if options else None

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        props: Mapping[str, Any] = schema.get("properties", {})
        required = list(schema.get("required", []))
        extra = schema.get("additionalProperties", True)
        names = required if depth >= _MAX_DEPTH else list(dict.fromkeys([*props, *required]))
        out: dict[str, Any] = {}
        for name in names:
            sub = props.get(name, extra if isinstance(extra, Mapping) else {"type": "string"})
            out[name] = self.value(sub, depth + 1)
        min_props = int(schema.get("minProperties", 0))
        if not props and isinstance(extra, Mapping) and depth < _MAX_DEPTH:
            min_props = max(min_props, 1)
        index = 0
        while len(out) < min_props and extra is not False:
            out.setdefault(
                f"key_{index}", self.value(extra if extra is not True else {}, depth + 1)
            )
            index += 1
        return out

    def _array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        prefix = list(schema.get("prefixItems", []))
        items = schema.get("items", {} if not prefix else False)
        if isinstance(items, list):  # draft-4 tuple form
            prefix, items = items, schema.get("additionalItems", False)
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", max(low, len(prefix)) + 3))
        if depth >= _MAX_DEPTH or items is False:
            count = max(low, len(prefix)) if items is not False else len(prefix)
        else:
            count = self._rng.randint(max(low, len(prefix), 1 if high >= 1 else 0), high)
        count = min(count, high)
        unique = bool(schema.get("uniqueItems"))
        out: list[Any] = []
        seen: set[str] = set()
        attempts = 0
        while len(out) < count and attempts < count * 8 + 8:
            attempts += 1
            sub = prefix[len(out)] if len(out) < len(prefix) else items
            val = self.value(sub if sub is not True else {}, depth + 1)
            key = json.dumps(val, sort_keys=True)
            if unique and key in seen:
                continue
            seen.add(key)
            out.append(val)
        return out

    def matches(self, value: Any, schema: Mapping[str, Any] | bool, depth: int) -> bool:
        """A small conformance check, used only to keep a `oneOf` choice unambiguous."""
        if isinstance(schema, bool):
            return schema
        if depth > _MAX_DEPTH * 2:
            return True
        schema = self.resolve(schema)
        if "const" in schema and value != schema["const"]:
            return False
        if "enum" in schema and value not in schema["enum"]:
            return False
        if "allOf" in schema and not all(
            self.matches(value, s, depth + 1) for s in schema["allOf"]
        ):
            return False
        if "anyOf" in schema and not any(
            self.matches(value, s, depth + 1) for s in schema["anyOf"]
        ):
            return False
        if (
            "oneOf" in schema
            and sum(self.matches(value, s, depth + 1) for s in schema["oneOf"]) != 1
        ):
            return False
        declared = schema.get("type")
        if declared is not None:
            kinds = declared if isinstance(declared, list) else [declared]
            if not any(_is_type(value, k) for k in kinds):
                return False
        if isinstance(value, dict):
            if any(name not in value for name in schema.get("required", [])):
                return False
            props = schema.get("properties", {})
            for name, sub in props.items():
                if name in value and not self.matches(value[name], sub, depth + 1):
                    return False
            if schema.get("additionalProperties") is False and any(k not in props for k in value):
                return False
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            low, high = _bounds(schema)
            if (low is not None and value < low) or (high is not None and value > high):
                return False
        return True


def _is_type(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return kind not in ("integer", "number")
    return kind != "integer" or isinstance(value, int) or value.is_integer()


def _schema_type(schema: Mapping[str, Any]) -> str:
    declared = schema.get("type")
    if isinstance(declared, list):
        non_null = [t for t in declared if t != "null"]
        return str(non_null[0]) if non_null else "null"
    if isinstance(declared, str):
        return declared
    if {"properties", "required", "additionalProperties"} & schema.keys():
        return "object"
    if {"items", "prefixItems", "minItems", "maxItems"} & schema.keys():
        return "array"
    if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & schema.keys():
        return "number"
    return "string"


def _bounds(schema: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """Inclusive-equivalent (low, high) bounds; exclusive bounds nudge inwards later."""
    low = schema.get("minimum")
    high = schema.get("maximum")
    ex_low = schema.get("exclusiveMinimum")
    ex_high = schema.get("exclusiveMaximum")
    if isinstance(ex_low, (int, float)) and not isinstance(ex_low, bool):
        low = ex_low if low is None else max(low, ex_low)
    if isinstance(ex_high, (int, float)) and not isinstance(ex_high, bool):
        high = ex_high if high is None else min(high, ex_high)
    return low, high


def _exclusive(schema: Mapping[str, Any], side: str) -> bool:
    """Whether the low/high bound is exclusive (draft-6 number form or draft-4 boolean)."""
    ex = schema.get("exclusiveMinimum" if side == "low" else "exclusiveMaximum")
    if ex is True:
        return True
    if isinstance(ex, (int, float)) and not isinstance(ex, bool):
        bound = schema.get("minimum" if side == "low" else "maximum")
        return bound is None or (ex >= bound if side == "low" else ex <= bound)
    return False


def _integer(schema: Mapping[str, Any], rng: random.Random) -> int:
    low_f, high_f = _bounds(schema)
    low: int | None = None
    high: int | None = None
    if low_f is not None:
        low = math.floor(low_f) + 1 if _exclusive(schema, "low") else math.ceil(low_f)
    if high_f is not None:
        high = math.ceil(high_f) - 1 if _exclusive(schema, "high") else math.floor(high_f)
    if low is None and high is None:
        low, high = 0, 100
    elif low is None:
        assert high is not None
        low = high - 100
    elif high is None:
        high = low + 100
    if low > high:
        return low
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0:
        k_low, k_high = math.ceil(low / step), math.floor(high / step)
        return step * rng.randint(k_low, max(k_low, k_high))
    return rng.randint(low, high)


def _number(schema: Mapping[str, Any], rng: random.Random) -> float | int:
    low, high = _bounds(schema)
    if low is None and high is None:
        low, high = 0.0, 100.0
    elif low is None:
        assert high is not None
        low = high - 100.0
    elif high is None:
        high = low + 100.0
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0:
        k_low, k_high = math.ceil(low / step), math.floor(high / step)
        if _exclusive(schema, "low") and k_low * step <= low:
            k_low += 1
        if _exclusive(schema, "high") and k_high * step >= high:
            k_high -= 1
        decimals = max(0, -math.floor(math.log10(step))) + 2 if step < 1 else 0
        first = rng.randint(k_low, max(k_low, k_high))
        candidate = round(step * first, decimals)
        ks = itertools.chain(range(first, max(k_low, k_high) + 1), range(k_low, first))
        for k in ks:  # a float multiple must divide exactly in binary floating point
            candidate = round(step * k, decimals)
            if (candidate / step).is_integer():
                break
        return candidate
    value = low + (high - low) * rng.uniform(0.05, 0.95)
    rounded = round(value, 3)
    return rounded if low < rounded < high or low == high else value


def _string(schema: Mapping[str, Any], rng: random.Random) -> str:
    fmt = schema.get("format")
    if fmt is not None:
        formatted = _formatted(str(fmt), rng)
        if formatted is not None:
            return formatted
    low = int(schema.get("minLength", 0))
    high = int(schema.get("maxLength", max(low, 48)))
    words: list[str] = []
    target = rng.randint(max(low, 1), max(low, min(high, 32))) if high > 0 else 0
    text = ""
    while len(text) < target:
        words.append(rng.choice(_VOCABULARY))
        text = " ".join(words)
    text = text[:high].rstrip() if high < len(text) else text
    if len(text) < low:
        text = (text + "x" * low)[: max(low, min(high, low))]
    return text


def _formatted(fmt: str, rng: random.Random) -> str | None:
    year, month, day = rng.randint(2000, 2030), rng.randint(1, 12), rng.randint(1, 28)
    hour, minute, second = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    word = rng.choice(_VOCABULARY[20:])
    generated = {
        "date": f"{year:04d}-{month:02d}-{day:02d}",
        "date-time": f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z",
        "time": f"{hour:02d}:{minute:02d}:{second:02d}Z",
        "email": f"{word}.{rng.randint(1, 999)}@example.com",
        "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "uri": f"https://example.com/{word}",
        "url": f"https://example.com/{word}",
        "hostname": f"{word}.example.com",
        "ipv4": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
    }
    return generated.get(fmt)
