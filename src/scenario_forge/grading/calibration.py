"""The judge's calibration set and the agreement figures ``scenario-forge judge check`` reports.

A calibration file is JSONL, one hand-labelled item a line::

    {"id": "cal-health-001", "domain": "health", "conversation": [{"role": "user", "content": "..."}],
     "answer": "...", "criterion": "Invents a DOI", "points": -8, "met": false}

``id``, ``domain``, ``conversation``, ``answer``, ``criterion``, ``points`` and ``met`` are
required with exactly these types (``met`` a JSON boolean, ``points`` a non-zero integer in
[-10, 10]); other fields (``kind``, ``note``, ...) are kept for reading and ignored. A bad file
fails on its first bad row with one line naming the file and the row.

Agreement (gold ``met`` vs the judge's verdict) counts an unscoreable verdict as wrong: it is a
miss for accuracy and a false negative of its gold class for F1, and a third "unscoreable"
category for Cohen's kappa (one the gold labels never take). Macro-F1 is the mean F1 of the
"met" and "not met" classes (HealthBench's grader-vs-physician figure); F1 per sign is the same
figure over the positive and over the negative criteria alone. Confidence intervals are
percentile bootstraps over items (seeded).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from .._validation import one_line
from ..errors import ConfigError
from ..hashing import sha256_hex
from ..records import Criterion, Message

REQUIRED = {"id": str, "domain": str, "conversation": list, "answer": str, "criterion": str, "points": int, "met": bool}
DEFAULT_FILE = "judge_calibration.jsonl"


class CalibrationItem(BaseModel):
    """One hand-labelled (conversation, answer, criterion) with its gold verdict."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    domain: str
    conversation: list[Message]
    answer: str
    criterion: str
    points: int
    met: bool
    kind: str | None = None

    @property
    def positive(self) -> bool:
        return self.points > 0


def default_calibration_file() -> Path:
    """The shipped calibration set (``labelled/judge_calibration.jsonl``)."""
    from ..resources import resource_dir

    return resource_dir("labelled") / DEFAULT_FILE


def calibration_hash(path: Path) -> str:
    """sha256[:16] of the file's bytes: part of a judge's identity."""
    return sha256_hex(Path(path).read_bytes())[:16]


def _type_name(value: Any) -> str:
    return "null" if value is None else {bool: "boolean", int: "integer", float: "number", str: "string",
                                          list: "list", dict: "object"}.get(type(value), type(value).__name__)


def _check_row(data: Any, where: str) -> CalibrationItem:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {_type_name(data)}")
    for field, kind in REQUIRED.items():
        if field not in data:
            raise ConfigError(f"{where}: missing field {field!r}")
        value = data[field]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise ConfigError(f"{where}: field {field!r} must be a {_type_name(kind())}, got {_type_name(value)}")
    for field in ("id", "answer", "criterion"):
        if not data[field].strip():
            raise ConfigError(f"{where}: field {field!r} is empty")
    try:
        Criterion(criterion=data["criterion"], points=data["points"])
        item = CalibrationItem.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {one_line(exc)}") from None
    if not item.conversation:
        raise ConfigError(f"{where}: field 'conversation' is empty")
    return item


def load_calibration(path: Path) -> list[CalibrationItem]:
    """Every item of a calibration file, validated (see the module docstring for the format)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"calibration file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    items: list[CalibrationItem] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} row {n}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not JSON ({exc.msg}); expected one JSON object per line") from None
        item = _check_row(data, where)
        if item.id in seen:
            raise ConfigError(f"{where}: duplicate id {item.id!r} (first on row {seen[item.id]})")
        seen[item.id] = n
        items.append(item)
    if not items:
        raise ConfigError(f"{path}: empty calibration file (no items)")
    return items


# --------------------------------------------------------------------------------------------- figures


def _f1(gold: np.ndarray, pred: np.ndarray, cls: int) -> float | None:
    tp = int(np.sum((gold == cls) & (pred == cls)))
    fp = int(np.sum((gold != cls) & (pred == cls)))
    fn = int(np.sum((gold == cls) & (pred != cls)))
    return None if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def macro_f1(gold: Sequence[bool], pred: Sequence[bool | None]) -> float | None:
    """Mean F1 of the classes "met" and "not met" that occur in ``gold`` or ``pred`` (an
    unscoreable ``None`` is a false negative of its gold class).

    >>> macro_f1([True, True, False, False], [True, False, False, False])   # F1 2/3 and 4/5
    0.7333333333333334
    >>> macro_f1([True, False], [None, False])   # met: F1 0; not met: F1 1
    0.5
    """
    g, p = _codes(gold), _codes(pred)
    scores = [s for s in (_f1(g, p, 1), _f1(g, p, 0)) if s is not None]
    return float(np.mean(scores)) if scores else None


def cohen_kappa(gold: Sequence[bool], pred: Sequence[bool | None]) -> float | None:
    """Cohen's kappa with "unscoreable" as a third category of the judge's.

    >>> cohen_kappa([True, True, False, False], [True, False, False, False])   # po 3/4, pe 1/2
    0.5
    """
    g, p = _codes(gold), _codes(pred)
    if g.size == 0:
        return None
    po = float(np.mean(g == p))
    pe = sum(float(np.mean(g == c)) * float(np.mean(p == c)) for c in (0, 1, 2))
    return None if pe >= 1.0 else (po - pe) / (1.0 - pe)


def _codes(values: Sequence[bool | None]) -> np.ndarray:
    return np.asarray([2 if v is None else int(v) for v in values], dtype=int)


def agreement(gold: Sequence[bool], pred: Sequence[bool | None]) -> dict[str, Any]:
    """n, accuracy, macro-F1, kappa, unscoreable rate and the confusion matrix (gold x verdict)."""
    g, p = _codes(gold), _codes(pred)
    n = int(g.size)
    confusion = {
        f"gold_{gname}": {name: int(np.sum((g == gc) & (p == pc))) for name, pc in (("met", 1), ("not_met", 0), ("unscoreable", 2))}
        for gname, gc in (("met", 1), ("not_met", 0))
    }
    return {
        "n": n,
        "accuracy": float(np.mean(g == p)) if n else None,
        "macro_f1": macro_f1(gold, pred),
        "kappa": cohen_kappa(gold, pred),
        "unscoreable_rate": float(np.mean(p == 2)) if n else None,
        "confusion": confusion,
    }


def bootstrap_agreement(
    gold: Sequence[bool], pred: Sequence[bool | None], n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[str, tuple[float, float] | None]:
    """Percentile bootstrap CIs (resampling items) of accuracy, macro-F1 and kappa."""
    g, p = _codes(gold), _codes(pred)
    if g.size == 0:
        return {"accuracy": None, "macro_f1": None, "kappa": None}
    rng = np.random.default_rng(seed)
    acc, f1, kappa = [], [], []
    decode = [False, True, None]
    for _ in range(n_boot):
        idx = rng.integers(0, g.size, size=g.size)
        gs, ps = [bool(x) for x in g[idx]], [decode[x] for x in p[idx]]
        acc.append(float(np.mean(g[idx] == p[idx])))
        f = macro_f1(gs, ps)
        k = cohen_kappa(gs, ps)
        if f is not None:
            f1.append(f)
        if k is not None:
            kappa.append(k)
    alpha = (1.0 - confidence) / 2

    def ci(values: list[float]) -> tuple[float, float] | None:
        if not values:
            return None
        low, high = np.quantile(values, [alpha, 1.0 - alpha])
        return (float(low), float(high))

    return {"accuracy": ci(acc), "macro_f1": ci(f1), "kappa": ci(kappa)}


def judge_figures(
    items: Sequence[CalibrationItem], verdicts: Sequence[bool | None], n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Every figure of a judge check: overall agreement with CIs, F1 per sign and per domain."""
    if len(items) != len(verdicts):
        raise ValueError("one verdict per item")
    gold = [it.met for it in items]
    out = agreement(gold, verdicts)
    out["ci"] = bootstrap_agreement(gold, verdicts, n_boot=n_boot, seed=seed)
    by_sign = {}
    for sign, keep in (("positive", True), ("negative", False)):
        idx = [i for i, it in enumerate(items) if it.positive == keep]
        sub = agreement([gold[i] for i in idx], [verdicts[i] for i in idx])
        by_sign[sign] = {"n": sub["n"], "accuracy": sub["accuracy"], "macro_f1": sub["macro_f1"]}
    out["f1_positive"] = by_sign["positive"]["macro_f1"]
    out["f1_negative"] = by_sign["negative"]["macro_f1"]
    out["by_sign"] = by_sign
    domains: dict[str, Any] = {}
    for domain in sorted({it.domain for it in items}):
        idx = [i for i, it in enumerate(items) if it.domain == domain]
        sub = agreement([gold[i] for i in idx], [verdicts[i] for i in idx])
        domains[domain] = {"n": sub["n"], "accuracy": sub["accuracy"], "macro_f1": sub["macro_f1"]}
    out["by_domain"] = domains
    return out
