"""The bundled RL trainer stage: TRL's GRPOTrainer on a mixture, with routed rubric rewards.

Two steps (:data:`TRAIN_STEPS`): :func:`prepare_training` checks everything cheap (the mixture and
its rows, the policy folder, the output folder's state, the judge's reachability) before any
weights load; :func:`run_training` trains. :func:`train` runs the list in this process; the
``train`` flow runs the same list as Prefect tasks of the same names.

What lands in ``OUT``:

- ``checkpoint-N/``: TRL checkpoints (weights, optimizer, scheduler, RNG, trainer state) every
  ``save_steps``; ``--resume`` continues from the last one;
- ``final/``: the trained model and tokenizer (a Hugging Face folder: ``eval --model OUT/final``);
- ``rewards.jsonl``: one line per scored completion (step, row id, source, trait, reward type,
  reward or null if unscoreable, the completion); ``rewards.rankN.jsonl`` per process when
  launched on several GPUs;
- ``train_log.jsonl``: TRL's log lines (loss, reward, per-source / per-trait reward means, ...);
- ``train.json``: the manifest (config, mixture, policy, judge identity, counts, wall time).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import ConfigError
from ..grading import GenericJudge, RubricGrader
from ..grading.generic_judge import TEMPLATE as GENERIC_TEMPLATE
from ..grading.rubric_grader import JUDGE_TEMPLATE
from ..mixture import read_meta
from ..prompts import PromptSet
from ..records import MixtureRow
from ..steps import AnyStep, Step, run_steps
from ..atomic import atomic_write_text
from ._extra import require
from .config import TrainConfig
from .dataset import to_dataset, training_rows
from .hf_trainer import common_args, jsonl_log_callback
from .policy import resolve_policy
from .rewards import RoutedReward

MANIFEST = "train.json"
REWARD_LOG = "rewards.jsonl"
TRAIN_LOG = "train_log.jsonl"
FINAL = "final"
#: Config fields a resumed run must share with the run it continues.
_SAME_ON_RESUME = ("mixture", "split", "max_rows", "policy", "num_generations", "batch_size", "seed")


class PreparedTraining(BaseModel):
    """A training run that passed every cheap check; the input of :func:`run_training`."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    config: TrainConfig
    split: str
    rows: list[MixtureRow]
    policy_dir: Path
    judge_identity: str | None
    mixture_meta: dict[str, Any]
    #: The judge's qualification as found before training (grading/qualification.py), or None without a judge.
    judge_qualification: dict[str, Any] | None = None


class TrainResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    out: Path
    final_model: Path
    global_step: int
    resumed_from: str | None
    rows: int
    split: str
    reward_counts: dict[str, int]
    #: Unscoreable rewards (None: advantage 0, out of the group baseline) per optimizer step.
    unscoreable_per_step: dict[str, int] = {}
    wall_s: float


def last_checkpoint(out: Path) -> Path | None:
    """The newest ``checkpoint-N`` folder in ``out`` that TRL finished writing."""
    done = [p for p in out.glob("checkpoint-*") if p.is_dir() and (p / "trainer_state.json").is_file()]
    if not done:
        return None
    return max(done, key=lambda p: int(p.name.rsplit("-", 1)[1]) if p.name.rsplit("-", 1)[1].isdigit() else -1)


def prepare_training(config: TrainConfig) -> PreparedTraining:
    """Check the mixture, rows, output folder, judge (one probe request, and its qualification:
    one warning line, or a refusal with ``require_qualified_judge``) and policy; load no policy weights."""
    meta = read_meta(config.mixture)
    split, rows = training_rows(config.mixture, config.split, config.max_rows)
    _check_out(config)
    kinds = Counter(r.reward_type for r in rows)
    judge_identity = None
    judge_qualification = None
    if kinds["rubric"] or kinds["generic_judge"]:
        from ..backends.factory import backend_identity
        from ..evaluation.backends import connect
        from ..grading.qualification import gate_judge

        judge = connect(config.judge, "judge")
        judge_identity = backend_identity(config.judge)
        judge_qualification = gate_judge(
            config.judge, "train", config.grading, require=config.require_qualified_judge,
            graded={"policy": policy_identity(config.policy)}, backend=judge,
        )
    policy_dir = resolve_policy(config.policy)
    return PreparedTraining(
        config=config,
        split=split,
        rows=rows,
        policy_dir=policy_dir,
        judge_identity=judge_identity,
        mixture_meta=meta.model_dump(mode="json"),
        judge_qualification=judge_qualification,
    )


def policy_identity(spec: str) -> str | None:
    """The policy's model identity, comparable with a judge's (self-grading check); None if unknown."""
    from ..backends.factory import backend_identity, local_model_identity
    from ..config import BackendConfig

    from ..modelspec import parse_model_spec

    try:
        kind, model = parse_model_spec(spec, role="policy")
        if kind == "embedded":
            return backend_identity(BackendConfig(kind="embedded"))
        return f"policy:{local_model_identity(model or spec)}"
    except Exception:  # noqa: BLE001 - a policy that cannot be found fails later with its own message
        return None


def _check_out(config: TrainConfig) -> None:
    out = config.out
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    checkpoint = last_checkpoint(out) if out.is_dir() else None
    if config.resume:
        if checkpoint is None:
            raise ConfigError(f"--resume: no finished checkpoint in {out} to continue from")
        manifest = out / MANIFEST
        if manifest.is_file():
            before = json.loads(manifest.read_text(encoding="utf-8")).get("config", {})
            now = config.model_dump(mode="json")
            same = {"mixture": lambda v: str(Path(v).resolve()) if v else v}
            changed = [
                k for k in _SAME_ON_RESUME
                if k in before and same.get(k, lambda v: v)(before[k]) != same.get(k, lambda v: v)(now[k])
            ]
            if changed:
                raise ConfigError(
                    f"--resume: {', '.join(changed)} differ from the run in {out}; resume with the same values"
                )
    elif checkpoint is not None or (out / FINAL).exists():
        raise ConfigError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")


def grpo_args(config: TrainConfig) -> Any:
    """TRL ``GRPOConfig`` from our config (our names -> TRL's; the arguments SFT shares: ``common_args``)."""
    trl = require("trl", "GRPO training")
    vllm: dict[str, Any] = {}
    if config.use_vllm:
        vllm = {
            "use_vllm": True,
            "vllm_mode": config.vllm_mode,
            "vllm_gpu_memory_utilization": config.vllm_gpu_memory_utilization,
            "vllm_tensor_parallel_size": config.vllm_tensor_parallel_size,
        }
        if config.vllm_server_base_url:
            vllm["vllm_server_base_url"] = config.vllm_server_base_url
    return trl.GRPOConfig(
        **common_args(config, config.out, "GRPO training"),
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        beta=config.beta,
        loss_type=config.loss_type,
        scale_rewards=config.scale_rewards,
        temperature=config.temperature,
        top_p=config.top_p,
        repetition_penalty=config.repetition_penalty,
        save_total_limit=config.save_total_limit,
        gradient_checkpointing=config.gradient_checkpointing,
        report_to=config.report_to or "none",
        remove_unused_columns=False,
        **vllm,
    )


def build_reward(config: TrainConfig, rows: list[MixtureRow], log_path: Path | None) -> RoutedReward:
    """The routed reward for ``rows``; judges are built only for the reward types present."""
    from ..evaluation.backends import load_backend

    kinds = {r.reward_type for r in rows}
    judge = load_backend(config.judge) if kinds & {"rubric", "generic_judge"} else None
    grader = RubricGrader(judge, config=config.grading) if judge is not None and "rubric" in kinds else None
    generic = GenericJudge(judge) if judge is not None and "generic_judge" in kinds else None
    return RoutedReward(grader, generic, log_path=log_path, reward_range=config.reward_range)


def run_training(prepared: PreparedTraining) -> TrainResult:
    """Train with GRPO; checkpoints, logs, the final model and the manifest land in ``config.out``."""
    config = prepared.config
    trl = require("trl", "GRPO training")
    start = time.perf_counter()
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = last_checkpoint(out) if config.resume else None
    reward = build_reward(config, prepared.rows, out / REWARD_LOG)
    args = grpo_args(config)  # initializes the (possibly multi-process) accelerate state
    main = _is_main_process()
    if main:
        _write_manifest(prepared, status="running", resumed_from=checkpoint)
    trainer = trl.GRPOTrainer(
        model=str(prepared.policy_dir),
        reward_funcs=[reward],
        args=args,
        train_dataset=to_dataset(prepared.rows),
        callbacks=[jsonl_log_callback(out / TRAIN_LOG, "GRPO training")],
    )
    if trainer.accelerator.num_processes > 1:  # each rank scores its own completions: one log per rank
        reward.log_path = out / f"rewards.rank{trainer.accelerator.process_index}.jsonl"
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    final = out / FINAL
    trainer.save_model(str(final))  # writes on the main process only
    if main and trainer.processing_class is not None:
        trainer.processing_class.save_pretrained(str(final))
    result = TrainResult(
        out=out,
        final_model=final,
        global_step=int(trainer.state.global_step),
        resumed_from=checkpoint.name if checkpoint else None,
        rows=len(prepared.rows),
        split=prepared.split,
        reward_counts={**reward.counts, "judge_requests": reward.judge_requests(), **reward.judge_counts()},
        unscoreable_per_step={str(k): v for k, v in sorted(reward.unscoreable_per_step.items())},
        wall_s=round(time.perf_counter() - start, 2),
    )
    if main:
        _write_manifest(prepared, status="finished", resumed_from=checkpoint, result=result)
    return result


def _is_main_process() -> bool:
    from accelerate import PartialState

    return bool(PartialState().is_main_process)


@dataclass(frozen=True)
class TrainJob:
    """The state of a training job as its steps fill it in."""

    config: TrainConfig
    prepared: PreparedTraining | None = None
    result: TrainResult | None = None

    def need_prepared(self) -> PreparedTraining:
        if self.prepared is None:
            raise RuntimeError("the training job is not prepared yet (prepare-training comes first)")
        return self.prepared

    def need_result(self) -> TrainResult:
        if self.result is None:
            raise RuntimeError("the training job has not trained yet (grpo-train comes last)")
        return self.result


def _prepare(job: TrainJob) -> TrainJob:
    return replace(job, prepared=prepare_training(job.config))


def _train(job: TrainJob) -> TrainJob:
    return replace(job, result=run_training(job.need_prepared()))


#: ``scenario-forge train``'s steps.
TRAIN_STEPS: list[AnyStep[TrainJob]] = [
    Step("prepare-training", _prepare, gives=("prepared",)),
    Step("grpo-train", _train, tags=("train",), needs=("prepared",), gives=("result",)),
]


def train(config: TrainConfig) -> TrainResult:
    """:data:`TRAIN_STEPS` in this process: ``prepare_training`` then ``run_training``."""
    return run_steps(TRAIN_STEPS, TrainJob(config)).need_result()


def _write_manifest(
    prepared: PreparedTraining, status: str, resumed_from: Path | None, result: TrainResult | None = None
) -> None:
    config = prepared.config
    path = config.out / MANIFEST
    previous = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    prompts = PromptSet()
    kinds = Counter(r.reward_type for r in prepared.rows)
    manifest = {
        "status": status,
        "config": config.model_dump(mode="json"),
        "policy": {"spec": config.policy, "folder": str(prepared.policy_dir)},
        "judge": prepared.judge_identity,
        "judge_config": config.judge.model_dump(mode="json") if prepared.judge_identity else None,
        "judge_qualification": prepared.judge_qualification,
        "reward_range": config.reward_range,
        "templates": prompts.hash_of([JUDGE_TEMPLATE, GENERIC_TEMPLATE]),
        "mixture": {
            "folder": str(config.mixture),
            "split": prepared.split,
            "rows": len(prepared.rows),
            "reward_types": dict(kinds),
            "sources": dict(Counter(r.source for r in prepared.rows)),
            "recipe": prepared.mixture_meta.get("recipe"),
            "seed": prepared.mixture_meta.get("seed"),
        },
        "runs": previous.get("runs", []),
    }
    if result is not None:
        manifest["runs"] = [
            *manifest["runs"],
            {
                "resumed_from": resumed_from.name if resumed_from else None,
                "global_step": result.global_step,
                "wall_s": result.wall_s,
                "reward_counts": result.reward_counts,
                "unscoreable_per_step": result.unscoreable_per_step,
            },
        ]
        manifest["final_model"] = str(result.final_model)
        manifest["global_step"] = result.global_step
    atomic_write_text(path, json.dumps(manifest, indent=2, default=str))
