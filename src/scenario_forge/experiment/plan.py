"""Before any training: every arm's stage configs, the judges, the suites and the compute match.

:func:`plan_experiment` validates what needs only the disk and one probe request (recipes, runs,
train settings, suites, judges' reachability) and builds each arm's :class:`ArmPlan`.
:func:`match_compute` runs once the arms are mixed (still before any training): every arm trains
``max_steps`` steps of ``batch_size x grad_accum`` completions, so steps and completions are equal
by construction; each arm's prompts are drawn from its train split, stratified by source
(:mod:`.draw`), and the training tokens are estimated from the drawn prompts (mean prompt tokens
under the policy's chat template, plus the completion budget); an arm further than
``token_tolerance`` from the baseline is refused. After training the tokens are measured (TRL's
``num_input_tokens_seen``: prompt + completion tokens) and compared the same way in the report.

>>> relative_gap(110, 100), relative_gap(80, 100), relative_gap(5, 0)
(0.1, -0.2, None)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..config import BackendConfig
from ..errors import ConfigError, ForgeError
from ..mixing.config import MixConfig
from ..records import MixtureRow
from ..training.config import TrainConfig
from .config import SAME_AS_REWARD, ArmConfig, ExperimentConfig


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArmPlan(_Record):
    """One arm's stage configs, validated."""

    name: str
    recipe: str
    mix: MixConfig
    train: TrainConfig


class ExperimentPlan(_Record):
    """What :func:`plan_experiment` checked: each arm's configs (baseline first), the evaluation judge
    it resolved, and whether it is the reward judge's model."""

    config: ExperimentConfig
    arms: list[ArmPlan]
    eval_judge: BackendConfig
    judges_same_model: bool
    suites: list[str]

    def arm(self, name: str) -> ArmPlan:
        return next(a for a in self.arms if a.name == name)


class ArmCompute(_Record):
    """One arm's compute as planned (before training), and the prompts it will train on."""

    arm: str
    train_rows: int
    train_rows_by_source: dict[str, int]  #: the arm's train split per source (beneficial / standard)
    prompts: int  #: prompts drawn in the run (each sampled num_generations times)
    prompts_by_source: dict[str, int]  #: the draw, stratified by source (experiment/draw.py)
    prompt_ids: list[str]  #: the drawn rows' ids (repeated when a source is passed over again)
    completions: int
    passes: float  #: prompts / train rows: above 1, the draw passes over the split again
    mean_prompt_tokens: float  #: over the drawn prompts
    estimated_tokens: int  #: completions x (mean prompt tokens + max completion length): an upper bound
    estimated_gap: float | None  #: relative to the baseline's estimate


class ComputePlan(_Record):
    steps: int
    completions: int
    tolerance: float
    short_data: str
    arms: list[ArmCompute]


def relative_gap(value: float, reference: float) -> float | None:
    """``(value - reference) / reference`` rounded to 4 places; None when the reference is 0."""
    if not reference:
        return None
    return round((value - reference) / reference, 4)


def _warn(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr)


def model_of(identity: str) -> str:
    """The model part of a backend identity (``embedded:F@sha256:X`` and ``llamacpp:F@sha256:X`` are
    the same model run two ways)."""
    return identity.split(":", 1)[1] if ":" in identity else identity


def _same_model(a: BackendConfig, b: BackendConfig) -> bool:
    from ..backends.factory import backend_identity

    if a == b:
        return True
    try:
        return model_of(backend_identity(a)) == model_of(backend_identity(b))
    except ForgeError:
        return False


def resolve_eval_judge(config: ExperimentConfig) -> tuple[BackendConfig, bool]:
    """The evaluation judge and whether it is the reward judge's model.

    Unset, it defaults to a model other than the reward judge (the embedded model when the reward
    judge is another); when the reward judge is the embedded model there is no other packaged model
    to default to, so the file must name one (or ``same-as-reward``)."""
    reward = config.judges.reward
    chosen = config.judges.eval
    if chosen == SAME_AS_REWARD:
        return reward, True
    if chosen is None:
        embedded = BackendConfig(kind="embedded", parallel_sequences=reward.parallel_sequences)
        if _same_model(reward, embedded):
            raise ConfigError(
                "judges.eval: the reward judge is the embedded model and no other packaged model can be the evaluation "
                "judge; name one (a .gguf, a folder or a server model), or write `eval: same-as-reward` to grade with "
                "the reward judge (a policy that games its grader would then read as improved)"
            )
        return embedded, False
    assert isinstance(chosen, BackendConfig)
    return chosen, _same_model(reward, chosen)


def arm_mix_config(config: ExperimentConfig, arm: ArmConfig) -> MixConfig:
    """The arm's mix: the experiment's runs and shared ``mix`` fields, the arm's recipe, its folder."""
    data = {**config.mix, "runs": [str(r) for r in config.runs], "recipe": arm.recipe,
            "out": str(config.arm_dir(arm.name) / "mixture"), "overwrite": True}
    return MixConfig.model_validate(data)


def arm_train_config(config: ExperimentConfig, arm: str, mixture: Path, resume: bool = False) -> TrainConfig:
    """The arm's training run: the budget (the same for every arm), the reward judge, its mixture."""
    b = config.budget
    return TrainConfig.model_validate({
        **b.train,
        "mixture": str(mixture), "policy": config.policy, "out": str(config.arm_dir(arm) / "train"),
        "resume": resume, "judge": config.judges.reward.model_dump(), "max_steps": b.max_steps,
        "batch_size": b.batch_size, "gradient_accumulation_steps": b.gradient_accumulation_steps,
        "num_generations": b.num_generations, "max_completion_length": b.max_completion_length,
        "learning_rate": b.learning_rate, "seed": b.seed,
        "save_steps": min(b.train.get("save_steps", b.max_steps), b.max_steps),
    })


def plan_experiment(config: ExperimentConfig, warn: Callable[[str], None] = _warn) -> ExperimentPlan:
    """Every check that needs no training: each arm's mix and train config (unknown recipe, missing
    run, bad train settings), the suites (shape, Hub reachability), the policy, both judges (one
    probe request each) and whether they are the same model (one warning line)."""
    from ..evaluation.backends import connect
    from ..evaluation.suites.run import load_suites
    from ..training.policy import resolve_policy

    arms = []
    for arm in config.ordered_arms():
        try:
            mix = arm_mix_config(config, arm)
            train = arm_train_config(config, arm.name, Path(mix.out))
        except ForgeError as exc:
            raise ConfigError(f"arm {arm.name!r}: {exc}") from None
        except ValueError as exc:  # pydantic's ValidationError
            from pydantic import ValidationError

            from .._validation import one_line

            raise ConfigError(f"arm {arm.name!r}: {one_line(exc) if isinstance(exc, ValidationError) else exc}") from None
        arms.append(ArmPlan(name=arm.name, recipe=arm.recipe, mix=mix, train=train))
    load_suites(config.eval.suites)  # a file in no adapter's shape, an unreachable Hub id: one line
    resolve_policy(config.policy)
    eval_judge, same = resolve_eval_judge(config)
    connect(config.judges.reward, "reward judge")
    if not same:
        connect(eval_judge, "evaluation judge")
    if same:
        warn("experiment: the evaluation judge is the reward judge's model: a policy that games its grader would read as improved")
    return ExperimentPlan(config=config, arms=arms, eval_judge=eval_judge, judges_same_model=same, suites=list(config.eval.suites))


def prompt_tokens(rows: Sequence[MixtureRow], policy_dir: Path) -> list[int]:
    """Each row's prompt length in tokens under the policy's chat template (what TRL feeds the model)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(policy_dir))
    out = []
    for r in rows:
        text: Any = tok.apply_chat_template([m.model_dump() for m in r.prompt], add_generation_prompt=True, tokenize=False)
        out.append(len(tok(str(text), add_special_tokens=False)["input_ids"]))
    return out


def no_beneficial_line(arm: str, train: dict[str, int], prompts: int) -> str:
    """The warning (or, with ``strict``, the refusal) for a non-baseline arm whose draw has no beneficial prompt.

    >>> no_beneficial_line("p5", {"beneficial": 1, "standard": 99}, 12)  # doctest: +NORMALIZE_WHITESPACE
    "experiment: arm 'p5' would train on 0 beneficial prompts: its train split has 1 beneficial of 100 rows and the
    budget draws 12 prompts (0.12 beneficial by share, rounded to 0); raise budget.max_steps or batch_size, or the
    recipe's beneficial share"
    """
    rows = sum(train.values())
    have = train.get("beneficial", 0)
    if not have:
        why = f"its train split has no beneficial rows ({rows} rows)"
    else:
        why = (f"its train split has {have} beneficial of {rows} rows and the budget draws {prompts} prompts "
               f"({prompts * have / rows:.2g} beneficial by share, rounded to 0)")
    return (f"experiment: arm {arm!r} would train on 0 beneficial prompts: {why}; raise budget.max_steps or "
            "batch_size, or the recipe's beneficial share")


def match_compute(
    plan: ExperimentPlan,
    mixtures: dict[str, Path],
    count_tokens: Callable[[Sequence[MixtureRow]], list[int]] | None = None,
    warn: Callable[[str], None] = _warn,
) -> ComputePlan:
    """Each arm's planned compute and the prompts it draws (stratified by source: experiment/draw.py);
    refuses (one line) an arm with no train rows, an arm whose split is shorter than its prompts under
    ``short_data: refuse``, or estimated tokens outside the tolerance. A non-baseline arm whose draw
    has no beneficial prompt gets one warning line (refused under ``strict``)."""
    from ..training.dataset import training_rows
    from ..training.policy import resolve_policy
    from .draw import by_source, draw_prompts

    config = plan.config
    b = config.budget
    if count_tokens is None:
        policy_dir = resolve_policy(config.policy)

        def count_tokens(rows: Sequence[MixtureRow]) -> list[int]:
            return prompt_tokens(rows, policy_dir)

    arms: list[dict[str, Any]] = []
    for arm in plan.arms:
        try:
            _, rows = training_rows(mixtures[arm.name], None, None)
        except ForgeError as exc:
            raise ConfigError(f"arm {arm.name!r}: compute cannot be matched: {exc}") from None
        if not rows:
            raise ConfigError(f"arm {arm.name!r}: compute cannot be matched: its train split has no rows")
        passes = b.prompts_per_run / len(rows)
        if passes > 1 and b.short_data == "refuse":
            raise ConfigError(
                f"arm {arm.name!r}: compute cannot be matched: {b.prompts_per_run} prompts needed "
                f"({b.max_steps} steps x {b.prompts_per_step}), its train split has {len(rows)} rows "
                "(budget.short_data: refuse; `cycle` passes over it again)"
            )
        try:
            drawn = draw_prompts(rows, b.prompts_per_run, b.seed)
        except ForgeError as exc:
            raise ConfigError(f"arm {arm.name!r}: {exc}") from None
        planned, available = by_source(drawn), by_source(rows)
        if arm.name != config.baseline and not planned["beneficial"]:
            line = no_beneficial_line(arm.name, available, b.prompts_per_run)
            if config.strict:
                raise ConfigError(f"{line} (--strict)")
            warn(line)
        unique = list({r.id: r for r in drawn}.values())
        length = dict(zip((r.id for r in unique), count_tokens(unique)))
        mean_prompt = sum(length[r.id] for r in drawn) / len(drawn)
        arms.append({
            "arm": arm.name, "train_rows": len(rows), "train_rows_by_source": available, "prompts": len(drawn),
            "prompts_by_source": planned, "prompt_ids": [r.id for r in drawn], "completions": b.completions_per_run,
            "passes": round(passes, 3), "mean_prompt_tokens": round(mean_prompt, 1),
            "estimated_tokens": round(b.completions_per_run * (mean_prompt + b.max_completion_length)),
        })
    base = arms[0]["estimated_tokens"]  # plan.arms puts the baseline first
    out = []
    for a in arms:
        gap = relative_gap(a["estimated_tokens"], base)
        if gap is not None and abs(gap) > b.token_tolerance:
            raise ConfigError(
                f"arm {a['arm']!r}: compute cannot be matched: estimated training tokens {a['estimated_tokens']:,} are "
                f"{gap:+.1%} from the baseline's {base:,} (tolerance {b.token_tolerance:.0%}; prompts average "
                f"{a['mean_prompt_tokens']} vs {arms[0]['mean_prompt_tokens']} tokens): raise budget.token_tolerance "
                "or max_completion_length, or change the mix"
            )
        out.append(ArmCompute(**a, estimated_gap=gap))
    return ComputePlan(steps=b.max_steps, completions=b.completions_per_run, tolerance=b.token_tolerance,
                       short_data=b.short_data, arms=out)
