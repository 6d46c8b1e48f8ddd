"""The engine's benchmark switches, read from the environment here, at the harness's edge.

The engine reads no environment variable: a benchmark run (or `rowloom bench compare
--baseline-env`, which sets them for one side) selects an engine-internal choice with these
variables, and the harness hands the builder the matching `EngineOptions`.

- `ROWLOOM_REQUEST_ADMISSION_PROFILE`: `default`, `v1` (the reference V1 behaviour),
  `no_header_pacing`, `no_provider_limit` (`bench/baselines.py` builds them).
- `ROWLOOM_TASK_ADMISSION_POLICY`: `provider_aware` (default) or `bounded_borrow` (the
  reference task policy alone).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final, TypeVar, get_args

from rowloom.bench.baselines import PROFILES as PROFILES
from rowloom.bench.baselines import admission_adjustment
from rowloom.builder.options import EngineOptions, TaskPolicyName

PROFILE_ENV: Final = "ROWLOOM_REQUEST_ADMISSION_PROFILE"
TASK_POLICY_ENV: Final = "ROWLOOM_TASK_ADMISSION_POLICY"
TASK_POLICIES: Final[tuple[TaskPolicyName, ...]] = get_args(TaskPolicyName)

T = TypeVar("T", bound=str)


def engine_options(environ: Mapping[str, str] | None = None) -> EngineOptions:
    """The options the switches in `environ` (default: `os.environ`) select; unset ones keep
    the defaults, an unknown value raises `ValueError` naming the variable."""
    env = os.environ if environ is None else environ
    profile = _choice(env, PROFILE_ENV, PROFILES, "default")
    policy = _choice(env, TASK_POLICY_ENV, TASK_POLICIES, "provider_aware")
    return EngineOptions(task_policy=policy, request_admission=admission_adjustment(profile))


def _choice(env: Mapping[str, str], name: str, allowed: tuple[T, ...], default: T) -> T:
    value = env.get(name, "").strip() or default
    for option in allowed:
        if value == option:
            return option
    raise ValueError(f"{name}={value!r}: expected one of {allowed}")
