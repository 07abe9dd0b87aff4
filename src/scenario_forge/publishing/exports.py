"""Row shapes other tools consume as-is: TRL, verl, and the two common rubric shapes.

- **TRL** (``trl`` config): a conversational ``prompt`` (``[{role, content}]``) that
  ``GRPOTrainer`` takes directly; every other column (``reward_type``, ``answer``, ``rubric``, ...)
  reaches reward functions as keyword arguments.
- **verl** (``verl`` config): ``data_source``, ``prompt``, ``ability``, ``reward_model`` ``{style,
  ground_truth}`` and ``extra_info`` -- the columns verl's RL dataset and reward manager read.
  ``data_source`` is ``scenario-forge/<reward_type>`` so a custom ``compute_score`` can route on it;
  ``style`` is ``rule`` for exact-match rows (ground truth: the answer) and ``model`` for rubric
  and generic-judge rows (ground truth: the rubric as HealthBench-shape JSON); ``extra_info.prompt``
  is the conversation as JSON (verl does not pass the prompt to a reward function, a judge needs it).
- **Rewards**: each config names the function that scores it (:data:`REWARD_FUNCTIONS`, written on
  the dataset card): TRL's ``scenario_forge.rewards.trl_reward`` and verl's
  ``custom_reward_function`` ``pkg://scenario_forge.rewards`` / ``compute_score``.
- **Rubrics**: HealthBench ``{criterion, points, tags}`` (our own shape, column ``rubric``) and
  Rubrics-as-Rewards ``{title, description, weight}`` (column ``rubric_rar``): weight = points,
  description = RaR's category prefix (Essential >= 5 points, Important 3-4, Optional 1-2, Pitfall
  < 0) + the criterion, title = the criterion's first six words.

Conversions are polars expressions applied a slice at a time, so exports of large mixtures stream.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

import polars as pl

from ..records import Criterion

RAR_TITLE_WORDS = 6
#: The reward function that scores each trainer export (:mod:`scenario_forge.rewards`), as each
#: trainer names it: TRL a Python object to import, verl its ``custom_reward_function`` (path, name).
REWARD_FUNCTIONS: dict[str, dict[str, str]] = {
    "trl": {"module": "scenario_forge.rewards", "name": "trl_reward"},
    "verl": {"path": "pkg://scenario_forge.rewards", "name": "compute_score"},
}


def rar_category(points: int) -> str:
    """RaR's rubric categories by weight.

    >>> [rar_category(p) for p in (8, 5, 4, 1, -3)]
    ['Essential', 'Essential', 'Important', 'Optional', 'Pitfall']
    """
    if points >= 5:
        return "Essential"
    if points >= 3:
        return "Important"
    if points > 0:
        return "Optional"
    return "Pitfall"


def healthbench_rubric(rubric: Iterable[Criterion]) -> list[dict[str, Any]]:
    """``[{criterion, points, tags}]``: HealthBench's rubric row shape."""
    return [{"criterion": c.criterion, "points": c.points, "tags": list(c.tags)} for c in rubric]


def rar_rubric(rubric: Iterable[Criterion]) -> list[dict[str, Any]]:
    """``[{title, description, weight}]``: the Rubrics-as-Rewards row shape.

    >>> rar_rubric([Criterion(criterion="Does not invent or guess a DOI for the cited trial", points=-8)])
    [{'title': 'Does not invent or guess a', 'description': 'Pitfall Criteria: Does not invent or guess a DOI for the cited trial', 'weight': -8}]
    """
    return [
        {
            "title": " ".join(c.criterion.split()[:RAR_TITLE_WORDS]),
            "description": f"{rar_category(c.points)} Criteria: {c.criterion}",
            "weight": c.points,
        }
        for c in rubric
    ]


# -- column expressions (the same rules as the two functions above) ---------------------------------

_E = pl.element()


def _rar_expr() -> pl.Expr:
    points = _E.struct.field("points")
    criterion = _E.struct.field("criterion")
    category = (
        pl.when(points >= 5).then(pl.lit("Essential"))
        .when(points >= 3).then(pl.lit("Important"))
        .when(points > 0).then(pl.lit("Optional"))
        .otherwise(pl.lit("Pitfall"))
    )
    return pl.col("rubric").list.eval(
        pl.struct(
            title=criterion.str.split(" ").list.head(RAR_TITLE_WORDS).list.join(" "),
            description=pl.concat_str([category, pl.lit(" Criteria: "), criterion]),
            weight=points,
        )
    )


def _rubric_json_expr() -> pl.Expr:
    return pl.format("[{}]", pl.col("rubric").list.eval(_E.struct.json_encode()).list.join(","))


def _prompt_json_expr() -> pl.Expr:
    return pl.format("[{}]", pl.col("prompt").list.eval(_E.struct.json_encode()).list.join(","))


def to_trl(frame: pl.DataFrame, offset: int = 0) -> pl.DataFrame:
    """Mixture rows -> the TRL export (conversational prompt + reward columns)."""
    return frame.select(
        "prompt", "id", "split", "source", "reward_type", "answer", "rubric",
        rubric_rar=_rar_expr(),
        task="task", domain="domain", trait="trait", pressure="pressure", shape="shape",
        persona_variant="persona_variant", scenario_id="scenario_id", rubric_spread="rubric_spread",
    )


def to_verl(frame: pl.DataFrame, offset: int = 0) -> pl.DataFrame:
    """Mixture rows -> verl's RL parquet columns."""
    rubric_json = _rubric_json_expr()
    exact = pl.col("reward_type") == "exact_match"
    return frame.with_row_index("_index", offset=offset).select(
        data_source=pl.concat_str([pl.lit("scenario-forge/"), pl.col("reward_type")]),
        prompt="prompt",
        ability=pl.when(pl.col("source") == "beneficial").then(pl.lit("beneficial_traits")).otherwise(
            pl.col("task").fill_null("standard")
        ),
        reward_model=pl.struct(
            style=pl.when(exact).then(pl.lit("rule")).otherwise(pl.lit("model")),
            ground_truth=pl.when(exact).then(pl.col("answer").fill_null("")).when(pl.col("reward_type") == "rubric")
            .then(rubric_json).otherwise(pl.lit("")),
        ),
        extra_info=pl.struct(
            index=pl.col("_index").cast(pl.Int64),
            id="id", split="split", source="source", reward_type="reward_type",
            domain="domain", trait="trait", pressure="pressure", shape="shape",
            persona_variant="persona_variant", scenario_id="scenario_id",
            prompt=_prompt_json_expr(),
            rubric=rubric_json,
            rubric_rar=pl.format("[{}]", _rar_expr().list.eval(_E.struct.json_encode()).list.join(",")),
            rubric_spread="rubric_spread",
        ),
    )


@cache
def trl_features() -> Any:
    from datasets import Features, List, Value

    s = Value("string")
    return Features(
        {
            "prompt": List({"role": s, "content": s}),
            "id": s, "split": s, "source": s, "reward_type": s, "answer": s,
            "rubric": List({"criterion": s, "points": Value("int64"), "tags": List(s)}),
            "rubric_rar": List({"title": s, "description": s, "weight": Value("int64")}),
            "task": s, "domain": s, "trait": s, "pressure": s, "shape": s,
            "persona_variant": s, "scenario_id": s, "rubric_spread": Value("float64"),
        }
    )


@cache
def verl_features() -> Any:
    from datasets import Features, List, Value

    s = Value("string")
    return Features(
        {
            "data_source": s,
            "prompt": List({"role": s, "content": s}),
            "ability": s,
            "reward_model": {"style": s, "ground_truth": s},
            "extra_info": {
                "index": Value("int64"), "id": s, "split": s, "source": s, "reward_type": s,
                "domain": s, "trait": s, "pressure": s, "shape": s, "persona_variant": s,
                "scenario_id": s, "prompt": s, "rubric": s, "rubric_rar": s, "rubric_spread": Value("float64"),
            },
        }
    )


EXPORTS = {"trl": (to_trl, trl_features), "verl": (to_verl, verl_features)}
