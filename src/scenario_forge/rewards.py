"""Reward functions for trainers outside scenario-forge: one for TRL, one for verl.

A published mixture (``scenario-forge publish``) carries a ``trl`` and a ``verl`` config; these are
the functions that score them, with the same rules as ``scenario-forge train``
(:class:`~scenario_forge.training.rewards.RoutedReward`): each row names its ``reward_type``,

- ``rubric``: HealthBench's per-example score of the answer against the row's rubric, graded by a
  judge model (:class:`~scenario_forge.grading.RubricGrader`; raw by default, may be negative);
- ``generic_judge``: the judge's 1-10 helpfulness rating mapped to [0, 1] (the paper's control arm);
- ``exact_match``: 1.0/0.0 (:func:`~scenario_forge.grading.exact_match.exact_match_reward`), no judge.

**TRL**: :func:`trl_reward` is a plain reward function, ``(completions, **kwargs) ->
list[float | None]``: pass it as ``GRPOTrainer(reward_funcs=[trl_reward], ...)``; the ``trl``
config's columns (``reward_type``, ``answer``, ``rubric``, ...) reach it as keyword arguments.
``None`` is an unscoreable answer (a criterion the judge could not read after its retries); TRL
leaves it out of its group's statistics.

**verl**: :func:`compute_score` has the signature verl's reward managers call,
``compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)``; point
``custom_reward_function.path=pkg://scenario_forge.rewards`` and ``custom_reward_function.name=compute_score``
at it. ``data_source`` is ``scenario-forge/<reward_type>``; any other data source is handed to
verl's own ``default_compute_score``. It returns ``{"score", "unscoreable"}``: verl's reward tensor
needs a number, so an unscoreable answer scores :attr:`RewardConfig.unscoreable_score` (0.0 unless
set) and is flagged ``unscoreable: 1.0`` (verl collects it into its reward metrics).

**The judge** is chosen by a :class:`RewardConfig` (:func:`make_trl_reward`, verl's
``custom_reward_function.reward_kwargs``) or by environment variables, read at each call:

========================================  ==============================================================
``SCENARIO_FORGE_JUDGE``                  the judge model spec (docs/models.md; default ``embedded``)
``SCENARIO_FORGE_JUDGE_BASE_URL``         an OpenAI-compatible server for it
``SCENARIO_FORGE_REWARD_RANGE``           ``raw`` (default) or ``clip`` (rubric scores clipped to [0, 1])
========================================  ==============================================================

The judge is loaded on the first row that needs one (once per process); exact-match rows need none:

>>> trl_reward(["so 2 + 2 = 4\\n#### 4", "5"], reward_type=["exact_match"] * 2, answer=["4", "4"])
[1.0, 0.0]
>>> compute_score("scenario-forge/exact_match", "The answer is 3,500.", "3500")
{'score': 1.0, 'unscoreable': 0.0}
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .config import BackendConfig
from .errors import ConfigError
from .evaluation.backends import load_backend
from .grading import GenericJudge, RubricGrader
from .grading.config import GradingConfig
from .hashing import canonical_json
from .modelspec import parse_model_spec
from .training.config import RewardRange
from .training.rewards import RoutedReward

ENV_JUDGE = "SCENARIO_FORGE_JUDGE"
ENV_JUDGE_BASE_URL = "SCENARIO_FORGE_JUDGE_BASE_URL"
ENV_REWARD_RANGE = "SCENARIO_FORGE_REWARD_RANGE"
#: ``data_source`` of the published ``verl`` config: ``scenario-forge/<reward_type>``.
DATA_SOURCE_PREFIX = "scenario-forge/"
REWARD_TYPES = ("rubric", "generic_judge", "exact_match")
#: Keywords verl's reward managers may add to a call (reward loop, sandbox); ignored for our rows.
VERL_CALL_KEYWORDS = frozenset(
    {"reward_router_address", "reward_model_tokenizer", "sandbox_fusion_url", "concurrent_semaphore", "memory_limit_mb"}
)


class RewardConfig(BaseModel):
    """Which judge scores rubric and generic-judge rows, and how rubric scores are reported."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    judge: BackendConfig = Field(default_factory=BackendConfig, description="the judge backend (default: embedded)")
    grading: GradingConfig = Field(default_factory=GradingConfig, description="how the rubric judge is asked")
    reward_range: RewardRange = Field(default="raw", description="rubric scores raw (may be negative) or clipped to [0, 1]")
    unscoreable_score: float = Field(
        default=0.0, description="verl only: the score an unscoreable answer gets (verl needs a number; it is flagged)"
    )

    @classmethod
    def from_spec(
        cls,
        judge: str | None = None,
        judge_base_url: str | None = None,
        reward_range: str | None = None,
        unscoreable_score: float | None = None,
    ) -> RewardConfig:
        """A config from a judge model spec (``embedded``, ``KIND:MODEL``, a .gguf file, a folder, a
        server model name with ``judge_base_url``).

        >>> RewardConfig.from_spec("fake:judge").judge.kind, RewardConfig.from_spec().judge.kind
        ('fake', 'embedded')
        >>> RewardConfig.from_spec("qwen", "http://127.0.0.1:8000/v1").judge.model
        'qwen'
        """
        kind, model = parse_model_spec(judge, base_url=judge_base_url, role="judge")
        values: dict[str, Any] = {"judge": BackendConfig(kind=kind, model=model, base_url=judge_base_url)}
        if reward_range is not None:
            values["reward_range"] = reward_range
        if unscoreable_score is not None:
            values["unscoreable_score"] = unscoreable_score
        try:
            return cls.model_validate(values)
        except ValueError as exc:
            raise ConfigError(" ".join(str(exc).split())) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RewardConfig:
        """The config the environment variables name (module docstring); ``overrides`` (the same
        keywords as :meth:`from_spec`, e.g. verl's ``reward_kwargs``) win over them.

        >>> RewardConfig.from_env({"SCENARIO_FORGE_JUDGE": "fake:judge", "SCENARIO_FORGE_REWARD_RANGE": "clip"}).reward_range
        'clip'
        """
        env = os.environ if environ is None else environ
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(given) - {"judge", "judge_base_url", "reward_range", "unscoreable_score"})
        if unknown:
            raise ConfigError(f"unknown reward setting(s): {', '.join(unknown)}")
        return cls.from_spec(
            judge=given.get("judge", env.get(ENV_JUDGE) or None),
            judge_base_url=given.get("judge_base_url", env.get(ENV_JUDGE_BASE_URL) or None),
            reward_range=given.get("reward_range", env.get(ENV_REWARD_RANGE) or None),
            unscoreable_score=given.get("unscoreable_score"),
        )


class Rewards:
    """The rewards of one :class:`RewardConfig`; its judges are loaded on first need and kept."""

    def __init__(self, config: RewardConfig) -> None:
        self.config = config
        self._grader: RubricGrader | None = None
        self._generic: GenericJudge | None = None
        self._lock = threading.Lock()  # verl's reward loop scores from several threads

    def grader(self) -> RubricGrader:
        backend = load_backend(self.config.judge)  # the process-wide judge (loaded once, or injected by a test)
        if self._grader is None or self._grader.backend is not backend:
            self._grader = RubricGrader(backend, config=self.config.grading)
        return self._grader

    def generic(self) -> GenericJudge:
        backend = load_backend(self.config.judge)
        if self._generic is None or self._generic.backend is not backend:
            self._generic = GenericJudge(backend)
        return self._generic

    def trl(self, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        """The TRL reward of ``completions`` (see :func:`trl_reward`)."""
        n = len(completions)
        kinds = set(kwargs.get("reward_type") or ["rubric"] * n)
        prompts = kwargs.pop("prompts", None)
        if kinds & {"rubric", "generic_judge"} and prompts is None:
            raise ValueError("rubric and generic_judge rows need the prompts (TRL passes them as `prompts=`)")
        with self._lock:
            routed = RoutedReward(
                self.grader() if "rubric" in kinds else None,
                self.generic() if "generic_judge" in kinds else None,
                reward_range=self.config.reward_range,
            )
            return routed(prompts if prompts is not None else [None] * n, completions, **kwargs)

    def verl(self, data_source: str, solution_str: str, ground_truth: str, extra_info: Mapping[str, Any] | None) -> dict[str, float]:
        """The verl score of one answer (see :func:`compute_score`): one row through the same
        :class:`~scenario_forge.training.rewards.RoutedReward` that TRL and ``scenario-forge train`` use."""
        kind = data_source.removeprefix(DATA_SOURCE_PREFIX)
        if kind not in REWARD_TYPES:
            raise ValueError(f"unknown data_source {data_source!r}: expected {DATA_SOURCE_PREFIX}" + "|".join(REWARD_TYPES))
        if kind == "rubric" and not json.loads(ground_truth or "[]"):
            raise ValueError(f"{data_source}: ground_truth holds no rubric (expected the rubric as JSON)")
        prompt = None if kind == "exact_match" else _prompt(data_source, extra_info)
        with self._lock:
            routed = RoutedReward(
                self.grader() if kind == "rubric" else None,
                self.generic() if kind == "generic_judge" else None,
                reward_range=self.config.reward_range,
            )
            (score,) = routed([prompt], [solution_str], reward_type=[kind], rubric=[ground_truth], answer=[ground_truth])
        if score is None:
            return {"score": self.config.unscoreable_score, "unscoreable": 1.0}
        return {"score": float(score), "unscoreable": 0.0}


def _prompt(data_source: str, extra_info: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The conversation the answer continues: the ``verl`` config's ``extra_info.prompt`` (JSON messages)."""
    raw = (extra_info or {}).get("prompt")
    if not raw:
        raise ValueError(f"{data_source}: extra_info has no 'prompt' (the conversation, as the published verl config holds it)")
    messages = json.loads(raw) if isinstance(raw, str) else list(raw)
    return [{"role": m["role"], "content": m["content"]} for m in messages]


_REWARDS: dict[str, Rewards] = {}
_REWARDS_LOCK = threading.Lock()


def rewards_for(config: RewardConfig) -> Rewards:
    """The process-wide :class:`Rewards` of ``config`` (a judge is loaded once per process)."""
    key = canonical_json(config)
    with _REWARDS_LOCK:
        if key not in _REWARDS:
            _REWARDS[key] = Rewards(config)
        return _REWARDS[key]


def make_trl_reward(config: RewardConfig) -> Callable[..., list[float | None]]:
    """A TRL reward function with the judge ``config`` names (instead of the environment's)."""
    rewards = rewards_for(config)

    def scenario_forge_reward(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        return rewards.trl(completions, **kwargs)

    return scenario_forge_reward


def trl_reward(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """TRL reward function for the published ``trl`` config: one reward per completion, ``None``
    where the judge could not score it. Columns used: ``reward_type``, ``answer`` (exact match),
    ``rubric`` (a list of ``{criterion, points, tags}``); ``prompts`` (TRL passes them) for rubric
    and generic-judge rows; ``log_metric`` (TRL passes it) gets per-source and per-trait means.
    The judge comes from the environment (module docstring).

    >>> trl_reward([[{"role": "assistant", "content": "It was a Tuesday."}]], reward_type=["exact_match"], answer=["Tuesday"])
    [1.0]
    """
    return rewards_for(RewardConfig.from_env()).trl(completions, **kwargs)


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: Mapping[str, Any] | None = None,
    *,
    judge: str | None = None,
    judge_base_url: str | None = None,
    reward_range: str | None = None,
    unscoreable_score: float | None = None,
    **kwargs: Any,
) -> float | dict[str, Any]:
    """verl's custom reward function: ``{"score": float, "unscoreable": 0.0 | 1.0}`` for a
    ``scenario-forge/<reward_type>`` row (the judge: the keywords, i.e. verl's
    ``custom_reward_function.reward_kwargs``, else the environment); any other ``data_source`` goes
    to verl's ``default_compute_score`` with every argument as given.

    >>> compute_score(data_source="scenario-forge/exact_match", solution_str="#### 7", ground_truth="8", extra_info={})
    {'score': 0.0, 'unscoreable': 0.0}
    """
    if not data_source.startswith(DATA_SOURCE_PREFIX):
        try:
            from verl.utils.reward_score import default_compute_score  # type: ignore[import-not-found]  # optional, not installed here
        except ImportError:
            raise ValueError(
                f"data_source {data_source!r} is not a scenario-forge row and verl is not installed to score it"
            ) from None
        result: float | dict[str, Any] = default_compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs)
        return result
    unknown = sorted(set(kwargs) - VERL_CALL_KEYWORDS)
    if unknown:  # a misspelt reward_kwargs key would otherwise be dropped silently
        raise ConfigError(f"unknown reward setting(s): {', '.join(unknown)} (expected judge, judge_base_url, reward_range, unscoreable_score)")
    config = RewardConfig.from_env(
        judge=judge, judge_base_url=judge_base_url, reward_range=reward_range, unscoreable_score=unscoreable_score
    )
    return dict(rewards_for(config).verl(data_source, solution_str, ground_truth, extra_info))
