"""The experiment as steps (:data:`EXPERIMENT_STEPS`), run by :func:`run_experiment` in this process
or by the Prefect ``experiment`` flow (``flows/experiment.py``) as tasks of the same names.

Each arm trains on the prompts the compute plan drew for it (stratified by source, :mod:`.draw`),
written at ``match-compute`` as the mixture folder ``OUT/arms/ARM/prompts``.

Per-arm resume: each arm's mix, training and evaluation leaves a marker
(``OUT/arms/ARM/{mix,train,eval}.done.json``) holding the content key of the config it finished
with, written last. A rerun of the same file skips every stage whose marker carries the same key;
a training run that stopped after a checkpoint continues from it (``--resume``), one that stopped
before its first checkpoint starts again. An arm that fails leaves the finished arms' folders and
markers as they were. A finished training run whose settings have since changed is refused (one
line) rather than mixed with a new one.

>>> from scenario_forge.steps import step_names
>>> step_names(EXPERIMENT_STEPS)
['prepare-experiment', 'mix-arm', 'match-compute', 'train-arm', 'evaluate-baseline', 'evaluate-arm', 'experiment-report']
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..atomic import atomic_write_text
from ..errors import ConfigError
from ..hashing import content_key
from ..mixture import MixtureMeta, read_meta, read_split, write_meta, write_split
from ..steps import AnyStep, ForEach, Runner, Step, run_steps
from .config import ExperimentConfig
from .draw import PROMPTS_DIR, used_prompts, write_prompts
from .plan import ArmPlan, ComputePlan, ExperimentPlan, arm_train_config, match_compute, plan_experiment

#: The shared evaluation set's folder under OUT, and its account of what was removed.
EVAL_SET = "eval-set"
EVAL_SET_JSON = "eval_set.json"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvalSet(_Record):
    """The rows every arm is evaluated on: a held-out mixture's splits less every row any arm trained on."""

    folder: Path
    source_arm: str
    splits: dict[str, int]  #: rows kept per split
    removed_trained: dict[str, int]  #: rows removed per split because some arm trained on their scenario
    cut_by_max_rows: dict[str, int]
    empty_splits: list[str]


class ArmTraining(_Record):
    """One arm's training as finished: the model and the compute it measured."""

    arm: str
    final_model: Path
    global_step: int
    train_rows: int  #: rows of the dataset it trained on: its drawn prompts (repeats included)
    completions: int
    tokens: int | None  #: TRL's num_input_tokens_seen: prompt + completion tokens trained on
    mean_completion_tokens: float | None
    wall_s: float
    resumed_from: str | None = None
    #: Prompts the trainer actually scored, per source (from its rewards.jsonl); None: no log.
    prompts_used: dict[str, int] | None = None


class ExperimentResult(_Record):
    out: Path
    files: dict[str, Path]
    figures: dict[str, Any]


def _marker(config: ExperimentConfig, arm: str, stage: str) -> Path:
    return config.arm_dir(arm) / f"{stage}.done.json"


def _read_marker(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _write_marker(path: Path, key: str, record: dict[str, Any] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"key": key, "record": record}, indent=2, default=str))


# ---- mix ---------------------------------------------------------------------------------------


class MixPart(_Record):
    config: ExperimentConfig
    arm: ArmPlan

    @property
    def name(self) -> str:
        return f"mix-{self.arm.name}"


def mix_arm(part: MixPart) -> Path:
    """The arm's mixture (``OUT/arms/ARM/mixture``): mixed now, or kept from a finished earlier run."""
    from ..mixing.run import run_mix

    mix = part.arm.mix
    key = content_key(mix.model_dump(mode="json"))
    marker = _marker(part.config, part.arm.name, "mix")
    done = _read_marker(marker)
    if done and done.get("key") == key and (Path(mix.out) / "mixture.json").is_file():
        return Path(mix.out)
    run_mix(mix)
    _write_marker(marker, key)
    return Path(mix.out)


# ---- the shared evaluation set -----------------------------------------------------------------


def _trained_keys(mixture: Path) -> set[str]:
    meta = read_meta(mixture)
    return {k for r in read_split(mixture, meta.train_split) for k in (r.id, r.scenario_id) if k}


def build_eval_set(plan: ExperimentPlan, mixtures: dict[str, Path], trained_from: dict[str, Path] | None = None) -> EvalSet:
    """Write ``OUT/eval-set``: the held-out splits of ``eval.splits_from``'s mixture (the baseline's by
    default), without any row whose scenario (or standard row) some arm trained on, first
    ``eval.max_rows`` rows of each split. Every arm is evaluated on exactly these rows.

    ``trained_from``: each arm's drawn prompts (``OUT/arms/ARM/prompts``), the rows it trains on; without
    it, each arm's whole train split counts as trained on."""
    from ..evaluation.run import default_splits

    config = plan.config
    source = config.eval.splits_from or config.baseline
    meta = read_meta(mixtures[source])
    names = list(config.eval.splits) or default_splits(meta.splits)
    for name in names:
        if name not in meta.splits:
            raise ConfigError(f"eval.splits: arm {source!r}'s mixture has no split {name!r}; it has: {', '.join(meta.splits)}")
        if name == meta.train_split:
            raise ConfigError(f"eval.splits: {name!r} is a training split")
    trained = set().union(*(_trained_keys(m) for m in (trained_from or mixtures).values()))
    folder = config.out / EVAL_SET
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    kept: dict[str, int] = {}
    removed: dict[str, int] = {}
    cut: dict[str, int] = {}
    empty: list[str] = []
    for name in names:
        rows = read_split(mixtures[source], name)
        clean = [r for r in rows if not ({r.id, r.scenario_id} - {None}) & trained]
        removed[name] = len(rows) - len(clean)
        if config.eval.max_rows is not None:
            cut[name] = max(0, len(clean) - config.eval.max_rows)
            clean = clean[: config.eval.max_rows]
        if not clean:
            empty.append(name)
            continue
        kept[name] = write_split(folder, name, clean)
    if not kept and not config.eval.suites:
        raise ConfigError(
            f"the evaluation set is empty: every held-out row of arm {source!r}'s mixture was trained on by some arm "
            f"({', '.join(f'{k} {v}' for k, v in removed.items())} removed) and no suites are named"
        )
    write_meta(folder, MixtureMeta(
        recipe={"name": f"{config.name}-eval-set", "from_arm": source}, seed=meta.seed, splits=kept,
        train_split="(none: an evaluation set)", trained_domains=[],
        provenance={"experiment": config.name, "from": str(mixtures[source])},
    ))
    result = EvalSet(folder=folder, source_arm=source, splits=kept, removed_trained=removed, cut_by_max_rows=cut, empty_splits=empty)
    atomic_write_text(config.out / EVAL_SET_JSON, result.model_dump_json(indent=2))
    return result


# ---- train -------------------------------------------------------------------------------------


class TrainPart(_Record):
    config: ExperimentConfig
    arm: str
    prompts: Path  #: the arm's drawn prompts (a mixture folder): what it trains on
    draw_key: str  #: content key of the drawn prompt ids: a changed draw is a changed training run

    @property
    def name(self) -> str:
        return f"train-{self.arm}"


def measured_tokens(train_dir: Path) -> tuple[int | None, float | None]:
    """TRL's last ``num_tokens`` (prompt + completion tokens trained on so far, kept across a resume)
    and the mean of its per-step ``completions/mean_length``, from ``train_log.jsonl``."""
    path = train_dir / "train_log.jsonl"
    if not path.is_file():
        return None, None
    tokens, lengths = None, []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("num_tokens") is not None:
            tokens = int(entry["num_tokens"])
        if entry.get("completions/mean_length") is not None:
            lengths.append(float(entry["completions/mean_length"]))
    return tokens, (round(sum(lengths) / len(lengths), 2) if lengths else None)


def train_arm(part: TrainPart) -> ArmTraining:
    """Train the arm with the shared budget, or return the finished run it left earlier."""
    from ..training.trainer import last_checkpoint, train

    config, arm = part.config, part.arm
    fresh = arm_train_config(config, arm, part.prompts)
    key = content_key(fresh.model_dump(mode="json"), part.draw_key)
    marker = _marker(config, arm, "train")
    done = _read_marker(marker)
    out = Path(fresh.out)
    if done is not None:
        if done.get("key") == key and (out / "final").is_dir():
            return ArmTraining.model_validate(done["record"])
        raise ConfigError(
            f"arm {arm!r} finished training with other settings than the experiment file now gives; "
            f"remove {out} and {marker} to train it again, or choose another out"
        )
    checkpoint = last_checkpoint(out) if out.is_dir() else None
    if checkpoint is None and out.exists():
        shutil.rmtree(out)  # stopped before its first checkpoint: nothing to continue from
    result = train(arm_train_config(config, arm, part.prompts, resume=checkpoint is not None))
    tokens, mean_len = measured_tokens(out)
    b = config.budget
    record = ArmTraining(
        arm=arm, final_model=result.final_model, global_step=result.global_step, train_rows=result.rows,
        completions=result.global_step * b.batch_size * b.gradient_accumulation_steps,
        tokens=tokens, mean_completion_tokens=mean_len, wall_s=result.wall_s, resumed_from=result.resumed_from,
        prompts_used=used_prompts(out, b.num_generations, b.batch_size * b.gradient_accumulation_steps),
    )
    _write_marker(marker, key, record.model_dump(mode="json"))
    return record


# ---- evaluate ----------------------------------------------------------------------------------


class EvalArmPart(_Record):
    plan: ExperimentPlan
    arm: str
    prompts: Path  #: the arm's drawn prompts: its trained domains are theirs
    final_model: Path
    eval_set: EvalSet
    baseline_eval: Path | None = None

    @property
    def name(self) -> str:
        return f"evaluate-{self.arm}"


def arm_eval_config(part: EvalArmPart) -> Any:
    """The arm's ``EvalConfig``: its trained model on the shared evaluation set and the suites, graded
    by the evaluation judge, against the baseline arm's grades; transfer split by the domains of the
    beneficial prompts it trained on (its drawn prompts' ``trained_domains``)."""
    from ..evaluation.config import EvalConfig
    from ..mixture import trained_domains
    from ..modelspec import model_backend_config

    config = part.plan.config
    e = config.eval
    return EvalConfig(
        mixture=part.eval_set.folder, splits=list(part.eval_set.splits), suites=e.suites,
        model=model_backend_config(str(part.final_model), kind="transformers", base_url=None),
        model_label=part.arm, baseline_grades=part.baseline_eval,
        baseline_label=config.baseline if part.arm != config.baseline else f"{config.baseline}-ref",
        judge=part.plan.eval_judge, answer_sampling=e.answer_sampling, refusal=e.refusal,
        trained_domains=trained_domains(part.prompts), bootstrap=e.bootstrap, confidence=e.confidence,
        min_pairs=e.min_pairs, fdr_q=e.fdr_q, seed=e.seed, out=config.arm_dir(part.arm) / "eval",
    )


def evaluate_arm(part: EvalArmPart) -> Path:
    """Evaluate the arm (or keep its finished evaluation); returns its eval folder."""
    from ..evaluation.run import evaluate
    from ..hashing import file_digest

    cfg = arm_eval_config(part)
    digest = ""
    if (part.final_model / "model.safetensors").is_file():
        digest = file_digest(part.final_model / "model.safetensors")
    set_key = content_key(part.eval_set.model_dump(mode="json"))
    base_key = (_read_marker(_marker(part.plan.config, part.plan.config.baseline, "eval")) or {}).get("key") if part.baseline_eval else None
    key = content_key(cfg.model_dump(mode="json"), digest, set_key, base_key)
    marker = _marker(part.plan.config, part.arm, "eval")
    done = _read_marker(marker)
    if done and done.get("key") == key and (cfg.out / "eval.json").is_file():
        return Path(cfg.out)
    if not part.eval_set.splits and not cfg.suites:
        raise ConfigError("nothing to evaluate: the evaluation set has no rows and no suites are named")
    evaluate(cfg)
    _write_marker(marker, key)
    return Path(cfg.out)


# ---- the job -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExperimentJob:
    """The experiment's state as its steps fill it in."""

    config: ExperimentConfig
    plan: ExperimentPlan | None = None
    mixtures: dict[str, Path] | None = None
    compute: ComputePlan | None = None
    prompts: dict[str, Path] | None = None  #: each arm's drawn prompts (OUT/arms/ARM/prompts)
    eval_set: EvalSet | None = None
    trainings: dict[str, ArmTraining] | None = None
    baseline_eval: Path | None = None
    evals: dict[str, Path] | None = None
    result: ExperimentResult | None = None

    def need_plan(self) -> ExperimentPlan:
        if self.plan is None:
            raise RuntimeError("the experiment is not planned yet (prepare-experiment comes first)")
        return self.plan

    def need_result(self) -> ExperimentResult:
        if self.result is None:
            raise RuntimeError("the experiment has no report yet (experiment-report comes last)")
        return self.result


def _need(value: Any, what: str) -> Any:
    if value is None:
        raise RuntimeError(f"experiment step order: {what} is not there yet")
    return value


def _prepare(job: ExperimentJob) -> ExperimentJob:
    return replace(job, plan=plan_experiment(job.config))


def _mix_parts(job: ExperimentJob) -> list[MixPart]:
    return [MixPart(config=job.config, arm=a) for a in job.need_plan().arms]


def _merge_mixes(job: ExperimentJob, folders: list[Path]) -> ExperimentJob:
    return replace(job, mixtures={a.name: f for a, f in zip(job.need_plan().arms, folders)})


def write_arm_prompts(config: ExperimentConfig, compute: ComputePlan, mixtures: dict[str, Path]) -> dict[str, Path]:
    """Each arm's drawn prompts (the compute plan's ids) as the mixture folder ``OUT/arms/ARM/prompts``."""
    from ..training.dataset import training_rows

    folders = {}
    for c in compute.arms:
        _, rows = training_rows(mixtures[c.arm], None, None)
        folders[c.arm] = write_prompts(mixtures[c.arm], rows, c.prompt_ids, config.arm_dir(c.arm) / PROMPTS_DIR, config.budget.seed)
    return folders


def _match(job: ExperimentJob) -> ExperimentJob:
    plan, mixtures = job.need_plan(), _need(job.mixtures, "the mixtures")
    compute = match_compute(plan, mixtures)
    atomic_write_text(job.config.out / "compute_plan.json", compute.model_dump_json(indent=2))
    prompts = write_arm_prompts(job.config, compute, mixtures)
    return replace(job, compute=compute, prompts=prompts, eval_set=build_eval_set(plan, mixtures, trained_from=prompts))


def _train_parts(job: ExperimentJob) -> list[TrainPart]:
    prompts, compute = _need(job.prompts, "the drawn prompts"), _need(job.compute, "the compute plan")
    keys = {c.arm: content_key(c.prompt_ids) for c in compute.arms}
    return [TrainPart(config=job.config, arm=a.name, prompts=prompts[a.name], draw_key=keys[a.name]) for a in job.need_plan().arms]


def _merge_trainings(job: ExperimentJob, results: list[ArmTraining]) -> ExperimentJob:
    return replace(job, trainings={r.arm: r for r in results})


def _eval_part(job: ExperimentJob, arm: str, baseline_eval: Path | None) -> EvalArmPart:
    trainings = _need(job.trainings, "the trained arms")
    return EvalArmPart(
        plan=job.need_plan(), arm=arm, prompts=_need(job.prompts, "the drawn prompts")[arm],
        final_model=trainings[arm].final_model, eval_set=_need(job.eval_set, "the evaluation set"), baseline_eval=baseline_eval,
    )


def _evaluate_baseline(job: ExperimentJob) -> ExperimentJob:
    return replace(job, baseline_eval=evaluate_arm(_eval_part(job, job.config.baseline, None)))


def _eval_parts(job: ExperimentJob) -> list[EvalArmPart]:
    base = _need(job.baseline_eval, "the baseline's evaluation")
    return [_eval_part(job, a.name, base) for a in job.need_plan().arms if a.name != job.config.baseline]


def _merge_evals(job: ExperimentJob, folders: list[Path]) -> ExperimentJob:
    evals = {job.config.baseline: _need(job.baseline_eval, "the baseline's evaluation")}
    evals.update({p.arm: f for p, f in zip(_eval_parts(job), folders)})
    return replace(job, evals=evals)


def _report(job: ExperimentJob) -> ExperimentJob:
    from .report import write_experiment_report

    result = write_experiment_report(
        job.need_plan(), _need(job.compute, "the compute plan"), _need(job.eval_set, "the evaluation set"),
        _need(job.trainings, "the trained arms"), _need(job.evals, "the evaluations"),
    )
    return replace(job, result=result)


#: ``scenario-forge experiment``'s steps (the Prefect flow runs the same list as tasks).
EXPERIMENT_STEPS: list[AnyStep[ExperimentJob]] = [
    Step("prepare-experiment", _prepare, needs=("config",), gives=("plan",)),
    ForEach("mix-arm", parts=_mix_parts, run=mix_arm, merge=_merge_mixes, tags=("llm",), part_name=lambda p: p.name,
            needs=("plan",), gives=("mixtures",)),
    Step("match-compute", _match, needs=("plan", "mixtures"), gives=("compute", "prompts", "eval_set")),
    ForEach("train-arm", parts=_train_parts, run=train_arm, merge=_merge_trainings, tags=("train",),
            part_name=lambda p: p.name, needs=("compute", "prompts"), gives=("trainings",)),
    Step("evaluate-baseline", _evaluate_baseline, tags=("llm",), needs=("trainings", "eval_set"), gives=("baseline_eval",)),
    ForEach("evaluate-arm", parts=_eval_parts, run=evaluate_arm, merge=_merge_evals, tags=("llm",),
            part_name=lambda p: p.name, needs=("baseline_eval",), gives=("evals",)),
    Step("experiment-report", _report, needs=("compute", "eval_set", "trainings", "evals"), gives=("result",)),
]


def experiment_with(config: ExperimentConfig, runner: Runner[ExperimentJob]) -> ExperimentResult:
    """Run :data:`EXPERIMENT_STEPS` with ``runner``, holding the experiment folder's lock."""
    from .. import runlock

    config.out.mkdir(parents=True, exist_ok=True)
    with runlock.hold(runlock.sibling_lock(config.out), f"experiment folder {config.out}"):
        return runner(EXPERIMENT_STEPS, ExperimentJob(config)).need_result()


def run_experiment(config: ExperimentConfig) -> ExperimentResult:
    """The experiment in this process (the direct runner)."""
    return experiment_with(config, run_steps)
