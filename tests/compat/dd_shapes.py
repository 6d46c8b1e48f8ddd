"""Data Designer config entries in the exact shape Data Designer 0.9.7 serializes them
(`DataDesignerConfigBuilder.write_config`: every default written out, keys sorted, hyphenated
column types, sampler params carrying their `sampler_type`, judge option keys as strings).

Used to write the tutorial/recipe configs in `configs/` (`python -m tests.compat.dd_shapes`)
and by the hostile-input tests to build variations of them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

_SAMPLER_DEFAULTS: dict[str, dict[str, Any]] = {
    "category": {"weights": None},
    "subcategory": {},
    "uniform": {"decimal_places": None},
    "gaussian": {"decimal_places": None},
    "bernoulli": {},
    "binomial": {},
    "poisson": {},
    "scipy": {"decimal_places": None},
    "bernoulli_mixture": {},
    "uuid": {"prefix": None, "short_form": False, "uppercase": False},
    "datetime": {"unit": "D"},
    "timedelta": {"unit": "D"},
    "person_from_faker": {"age_range": [18, 114], "city": None, "locale": "en_US", "sex": None},
    "person": {
        "age_range": [18, 114],
        "city": None,
        "locale": "en_US",
        "select_field_values": None,
        "sex": None,
        "with_synthetic_personas": False,
    },
}


def params(sampler_type: str, **given: Any) -> dict[str, Any]:
    """Sampler params as DD writes them (weights normalised)."""
    out = copy.deepcopy({**_SAMPLER_DEFAULTS[sampler_type], **given, "sampler_type": sampler_type})
    if out.get("weights"):
        total = sum(out["weights"])
        out["weights"] = [w / total for w in out["weights"]]
    return out


def _base(name: str, column_type: str, drop: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "column_type": column_type,
        "drop": drop,
        "name": name,
        "propagate_skip": True,
        "skip": None,
        **extra,
    }


def sampler(
    name: str,
    sampler_type: str,
    conditional: dict[str, dict[str, Any]] | None = None,
    convert_to: str | None = None,
    drop: bool = False,
    **given: Any,
) -> dict[str, Any]:
    """A sampler column."""
    return _base(
        name,
        "sampler",
        drop,
        conditional_params={k: params(sampler_type, **v) for k, v in (conditional or {}).items()},
        convert_to=convert_to,
        params=params(sampler_type, **given),
        sampler_type=sampler_type,
    )


def llm(kind: str, name: str, prompt: str, model_alias: str, **extra: Any) -> dict[str, Any]:
    """An `llm-text`/`llm-code`/`llm-structured`/`llm-judge` column."""
    defaults = {
        "extract_reasoning_content": False,
        "multi_modal_context": None,
        "system_prompt": None,
        "tool_alias": None,
        "with_trace": "none",
    }
    fields = {k: extra.pop(k, v) for k, v in defaults.items()}
    fields.update(model_alias=model_alias, prompt=prompt)
    skip = extra.pop("skip", None)
    propagate = extra.pop("propagate_skip", True)
    column = _base(name, f"llm-{kind}", extra.pop("drop", False), **fields, **extra)
    column.update(skip=skip, propagate_skip=propagate)
    return column


def score(name: str, description: str, options: dict[Any, str]) -> dict[str, Any]:
    """A judge score (option keys become strings, as DD writes them)."""
    return {
        "description": description,
        "name": name,
        "options": {str(k): v for k, v in options.items()},
    }


def expression(name: str, expr: str, dtype: str = "str", drop: bool = False) -> dict[str, Any]:
    """An expression column."""
    return _base(name, "expression", drop, dtype=dtype, expr=expr)


def code_validation(name: str, target: str, code_lang: str, batch_size: int = 10) -> dict[str, Any]:
    """A `validation` column with a code validator."""
    return _base(
        name,
        "validation",
        batch_size=batch_size,
        target_columns=[target],
        validator_params={"code_lang": code_lang, "validator_type": "code"},
        validator_type="code",
    )


def local_validation(
    name: str, targets: list[str], function: str, output_schema: Any = None, batch_size: int = 10
) -> dict[str, Any]:
    """A `validation` column with a local callable validator."""
    return _base(
        name,
        "validation",
        batch_size=batch_size,
        target_columns=targets,
        validator_params={
            "output_schema": output_schema,
            "validation_function": function,
            "validator_type": "local_callable",
        },
        validator_type="local_callable",
    )


def custom(
    name: str,
    function: str,
    strategy: str = "cell_by_cell",
    generator_params: dict[str, Any] | None = None,
    drop: bool = False,
) -> dict[str, Any]:
    """A `custom` column. Data Designer writes `generator_function` as the function's bare
    `__name__`; these configs give `module:function` (the one field rowloom needs changed)."""
    return _base(
        name,
        "custom",
        drop,
        generation_strategy=strategy,
        generator_function=function,
        generator_params=generator_params,
    )


def drop_columns(name: str, column_names: list[str]) -> dict[str, Any]:
    """A `drop_columns` processor."""
    return {"column_names": column_names, "name": name, "processor_type": "drop_columns"}


def schema_transform(name: str, template: dict[str, Any]) -> dict[str, Any]:
    """A `schema_transform` processor."""
    return {"name": name, "processor_type": "schema_transform", "template": template}


def chat_model(alias: str, model: str, provider: str, **params_: Any) -> dict[str, Any]:
    """A chat-completion model config."""
    inference = {
        "extra_body": None,
        "generation_type": "chat-completion",
        "max_parallel_requests": 4,
        "max_tokens": None,
        "temperature": None,
        "timeout": None,
        "top_p": None,
        **params_,
    }
    return {
        "alias": alias,
        "inference_parameters": inference,
        "model": model,
        "provider": provider,
        "skip_health_check": False,
    }


def default_model_configs() -> list[dict[str, Any]]:
    """The model configs DD embeds when a config names none of its own (0.9.7)."""
    here = Path(__file__).parent / "configs" / "product_info_qa.yaml"
    return list(yaml.safe_load(here.read_text())["data_designer"]["model_configs"])


def config(
    columns: list[dict[str, Any]],
    model_configs: list[dict[str, Any]] | None = None,
    seed_config: dict[str, Any] | None = None,
    processors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The `{data_designer: ..., library_version}` envelope."""
    return {
        "data_designer": {
            "columns": columns,
            "constraints": None,
            "model_configs": model_configs
            if model_configs is not None
            else default_model_configs(),
            "processors": processors,
            "profilers": None,
            "seed_config": seed_config,
            "tool_configs": [],
        },
        "library_version": "0.9.7",
    }


def dump(data: dict[str, Any], path: Path) -> None:
    """Write as DD does (`yaml.dump`, sorted keys, block style)."""
    path.write_text(yaml.dump(copy.deepcopy(data), indent=2), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover - regenerates the committed fixtures
    from tests.compat.recipes import write_all

    write_all(Path(__file__).parent / "configs")
