"""Judge qualification: run a judge over the calibration set, keep the result per judge identity,
and gate the commands that hand out rewards or scores on it.

A judge's identity is what decides its verdicts: the model (its digest, as
:func:`~scenario_forge.backends.factory.backend_identity` gives it), the rubric prompt (the hash of
``grade_criterion.j2`` and the verdict form) and the calibration set it was checked on (the hash of
the file). ``scenario-forge judge check`` stores its result under
``~/.cache/scenario-forge/judges/<key>.json`` (``$SCENARIO_FORGE_JUDGES_DIR`` moves it);
``mix``, ``train`` and ``eval`` look it up, print one warning line when the judge has none or its
macro-F1 is below the threshold (0.7, the level HealthBench reports for its GPT-4.1 grader), refuse
with ``--require-qualified-judge``, and write what they found into their outputs.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..backends.base import Backend
from ..config import BackendConfig
from ..errors import ConfigError
from ..hashing import content_key
from ..prompts import PromptSet
from ..records import Criterion
from ..atomic import atomic_write_text
from .calibration import CalibrationItem, calibration_hash, default_calibration_file, judge_figures
from .config import GradingConfig
from .rubric_grader import JUDGE_TEMPLATE, GradeItem, RubricGrader

#: Macro-F1 below which a judge is not qualified (HealthBench's GPT-4.1 grader: 0.709).
DEFAULT_THRESHOLD = 0.7
ENV_DIR = "SCENARIO_FORGE_JUDGES_DIR"


def judges_dir() -> Path:
    """Where judge check results are kept (``$SCENARIO_FORGE_JUDGES_DIR`` overrides)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scenario-forge" / "judges"


class JudgeIdentity(BaseModel):
    """What decides a judge's verdicts (the key its qualification is kept under)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    template_hash: str
    form: str
    calibration_hash: str

    @property
    def key(self) -> str:
        return content_key("judge-v1", self.model, self.template_hash, self.form, self.calibration_hash)


def template_hash(prompts: PromptSet | None = None) -> str:
    return (prompts or PromptSet()).hashes[JUDGE_TEMPLATE]


def expected_form(cfg: BackendConfig, grading: GradingConfig) -> str | None:
    """The verdict form a judge of ``cfg`` will use, known without loading it; None when only the
    loaded backend can tell (``auto`` on a server or vLLM, which may enforce a JSON schema)."""
    if grading.output != "auto":
        return grading.output
    if cfg.kind in ("openai", "vllm"):
        return None
    # a GGUF other than the embedded one decodes under the schema's grammar unless structured output is off
    return grading.form_for(cfg.kind, cfg.kind == "llamacpp" and cfg.structured_output == "auto")


def run_check(
    backend: Backend,
    items: Sequence[CalibrationItem],
    grading: GradingConfig | None = None,
    prompts: PromptSet | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[dict[str, Any], RubricGrader]:
    """Grade every calibration item (one criterion each, all in one batch plus retry rounds) and
    compute the agreement figures."""
    grader = RubricGrader(backend, prompts=prompts, config=grading)
    grades = grader.grade(
        [
            GradeItem(conversation=it.conversation, answer=it.answer,
                      rubric=[Criterion(criterion=it.criterion, points=it.points)])
            for it in items
        ]
    )
    verdicts = [g.met[0] for g in grades]
    figures = judge_figures(items, verdicts, n_boot=n_boot, seed=seed)
    figures["retries"] = int(grader.counts["retried"])
    figures["recovered_by_retry"] = int(grader.counts["recovered"])
    figures["unscoreable"] = sum(v is None for v in verdicts)
    figures["items"] = [
        {"id": it.id, "gold": it.met, "verdict": v, "points": it.points, "reply": g.raw[0]}
        for it, v, g in zip(items, verdicts, grades)
    ]
    return figures, grader


def save_result(identity: JudgeIdentity, figures: dict[str, Any], extra: dict[str, Any]) -> Path:
    """Keep a check's result under its judge's key; returns the file."""
    record = {
        "key": identity.key,
        "identity": identity.model_dump(),
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
        "figures": figures,
    }
    path = judges_dir() / f"{identity.key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=2, default=str))
    return path


def _records() -> list[dict[str, Any]]:
    folder = judges_dir()
    out = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(record, dict) and isinstance(record.get("identity"), dict):
                out.append(record)
    return out


def find_result(model: str, template: str, form: str | None, calibration: str | None = None) -> dict[str, Any] | None:
    """The stored check of this model and prompt (and form, when known): the one on ``calibration``
    (the shipped set's hash) if there is one, else the latest on any set."""
    matches = [
        r for r in _records()
        if r["identity"].get("model") == model and r["identity"].get("template_hash") == template
        and (form is None or r["identity"].get("form") == form)
    ]
    if not matches:
        return None
    same_set = [r for r in matches if r["identity"].get("calibration_hash") == calibration]
    return max(same_set or matches, key=lambda r: str(r.get("checked_at", "")))


def _shipped_hash() -> str | None:
    try:
        return calibration_hash(default_calibration_file())
    except (FileNotFoundError, OSError):
        return None


def qualification(
    cfg: BackendConfig,
    grading: GradingConfig | None = None,
    prompts: PromptSet | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    model_identity: str | None = None,
    backend: Backend | None = None,
) -> dict[str, Any]:
    """What is known of this judge's qualification, as written into manifests and cards (pass the
    loaded ``backend`` when there is one: it tells the verdict form on any backend).

    ``status`` is ``qualified`` (macro-F1 >= threshold), ``below_threshold`` or ``unqualified``
    (never checked with this model, prompt and form)."""
    from ..backends.factory import backend_identity

    grading = grading or GradingConfig()
    model = model_identity or backend_identity(cfg)
    template = template_hash(prompts)
    form = grading.form_for(backend.kind, backend.auto_json_schema) if backend is not None else expected_form(cfg, grading)
    record = find_result(model, template, form, _shipped_hash())
    out: dict[str, Any] = {"judge": model, "template_hash": template, "form": form, "threshold": threshold}
    if record is None:
        return {**out, "status": "unqualified"}
    figures = record.get("figures", {})
    f1 = figures.get("macro_f1")
    return {
        **out,
        "form": record["identity"].get("form"),
        "status": "qualified" if f1 is not None and f1 >= threshold else "below_threshold",
        "key": record.get("key"),
        "checked_at": record.get("checked_at"),
        "calibration_hash": record["identity"].get("calibration_hash"),
        "calibration_file": record.get("calibration_file"),
        **{k: figures.get(k) for k in ("n", "accuracy", "macro_f1", "kappa", "unscoreable_rate", "f1_positive", "f1_negative")},
        "macro_f1_ci": (figures.get("ci") or {}).get("macro_f1"),
    }


def qualification_line(q: dict[str, Any]) -> str | None:
    """The one warning line for a judge that is not qualified (None when it is)."""
    if q["status"] == "qualified":
        return None
    if q["status"] == "unqualified":
        return (f"judge {q['judge']} has no qualification for this rubric prompt: its rewards/scores are unchecked "
                "(run `scenario-forge judge check` with the same judge flags)")
    return (f"judge {q['judge']} has macro-F1 {q['macro_f1']:.3f} < {q['threshold']:.2f} against hand labels "
            f"(n={q['n']}, `scenario-forge judge check`): its rewards/scores are unreliable")


def _strip_kind(identity: str) -> str:
    return identity.split(":", 1)[1] if ":" in identity else identity


def same_model(a: str | None, b: str | None) -> bool:
    """Two backend identities name the same weights (``embedded:X@sha256:d`` and ``llamacpp:X@sha256:d`` do).

    >>> same_model("embedded:m.gguf@sha256:ab", "llamacpp:m.gguf@sha256:ab"), same_model("openai:a", "openai:b")
    (True, False)
    """
    return a is not None and b is not None and _strip_kind(a) == _strip_kind(b)


def gate_judge(
    cfg: BackendConfig,
    role: str,
    grading: GradingConfig | None = None,
    require: bool = False,
    graded: dict[str, str | None] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    warn: Any = None,
    backend: Backend | None = None,
) -> dict[str, Any]:
    """Before ``mix``/``train``/``eval`` starts: look up the judge's qualification, print one
    warning line if it is missing or below the threshold (or raise with ``require``), and one more
    line per graded model that is the judge itself (self-grading). Returns the qualification."""
    warn = warn or (lambda line: print(f"warning: {line}", file=sys.stderr))
    q = qualification(cfg, grading, threshold=threshold, backend=backend)
    line = qualification_line(q)
    if line is not None:
        if require:
            raise ConfigError(f"--require-qualified-judge: {line}")
        warn(f"{role}: {line}")
    for what, identity in (graded or {}).items():
        if same_model(identity, q["judge"]):
            warn(f"{role}: the judge is the {what} it grades ({q['judge']}): self-grading inflates the scores")
    return q


def quality_judge_warning(generator: BackendConfig, judge: BackendConfig | None) -> str | None:
    """The warning line when the curation quality judge is the generator model (it rates its own
    scenarios), else None. ``judge=None`` means "the generation backend" (the default)."""
    from ..backends.factory import backend_identity

    gen_id = backend_identity(generator)
    judge_id = gen_id if judge is None else backend_identity(judge)
    if not same_model(gen_id, judge_id):
        return None
    return (f"the curation quality judge is the generator model ({gen_id}): it rates its own scenarios "
            "(set curation.judge_backend in --config to another model)")
