"""Quality figures for a run and the one verdict drawn from them: training-ready, yes or no.

Plain functions over scenarios, lint results and embeddings; every figure is deterministic and
needs no model (the embeddings are the ones curation computed for deduplication).

The figures (``manifest.json`` ``quality``, ``report.md``, the CLI summary):

- **lint**: share of the curation's input (the generated scenarios) that passes every lint
  detector, the count per reason code, and the same share among the kept scenarios;
- **kept rate**: kept / planned;
- **diversity**: the mean pairwise cosine similarity of the kept scenarios' embeddings (lower is
  more diverse) and distinct-2 of their user turns (unique word bigrams / all bigrams);
- **rubric specificity**: the share of the kept rubrics' criteria that name something concrete
  from their own conversation (see :func:`criterion_is_specific`);
- **flaw standing rate**: the share of generated flawed-turn scenarios (shape
  ``flawed_prior_turn``) with neither a ``flaw_retracted`` nor a ``flaw_missing`` lint finding;
- **judge qualification**: the curation judge model's qualification as a rubric grader (``scenario-forge
  judge check``) where one was recorded; ``qualified`` is None when it never was.

:func:`training_verdict` compares them with :class:`~scenario_forge.config.ReadinessThresholds`
(documented in ``docs/curation.md``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..config import BackendConfig, ReadinessThresholds
from ..records import Scenario
from .report import distinct_n

#: The lint codes that say a planted flaw does not stand.
FLAW_CODES = ("flaw_retracted", "flaw_missing")

#: What to use instead when the verdict is "no" for lack of model quality.
ADVICE = (
    "use a capable model: --backend openai --base-url URL --model NAME (any OpenAI-compatible server), "
    "or --backend vllm --model HF_ID on a GPU"
)

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\-]*[A-Za-z]|[A-Za-z]|\d[\d.,:/%]*")
_WORD = re.compile(r"[a-z0-9]+")

#: Words of five letters or more that any rubric line uses whatever the conversation: the slot
#: openings, grading verbs, function words. A criterion token in this list never counts as concrete.
BOILERPLATE = frozenset(
    """
    about above across actually advice after again against along already although always among another
    answer answers anyone anything approach appropriate around asked asking assistant assistant's avoid
    avoids based because before being below between calmly carefully cause certain change clear clearly
    could concern concerns concrete consider considers correct directly doing during either
    enough every everything explain explains explaining fails falls first focus follow following given
    gives giving going great guidance having helpful helps honest however ignore ignores important
    including information instead issue issues itself keeping least likely making matter might mistake
    mistakes never other others otherwise people perhaps person please point points possible preachy
    pressure problem properly provide provides providing question questions quite rather really
    reason reasonable recommend recommends respect respectful respectfully response should simply
    since situation something specific state states still suggest suggests support sure tempting
    their theirs there these thing things think those though through together trait tries under
    understand unless until useful user's users using usually wants where whether which while
    without would write wrong years yourself
    """.split()
)


#: Words written with a capital inside a sentence that name nothing (pronouns, "AI", numbers in words).
_CAPITALISED_ANYWAY = frozenset(
    "i i'm i'll i've i'd a an the ai ok okay yes no one two three he she we you they it this that my your our "
    "his her their mr mrs ms dr".split()
)


def lint_summary(results: Sequence[Any]) -> dict[str, Any]:
    """Rows checked, usable, their share, and the rows per reason code.

    ``results`` are :class:`~scenario_forge.lint.LintResult` (anything with ``usable`` and ``reasons``).

    >>> from types import SimpleNamespace as R
    >>> lint_summary([R(usable=True, reasons=[]), R(usable=False, reasons=["placeholder", "role_label"]),
    ...               R(usable=False, reasons=["placeholder"])])
    {'checked': 3, 'usable': 1, 'pass_rate': 0.3333, 'by_reason': {'placeholder': 2, 'role_label': 1}}
    """
    by_reason: Counter[str] = Counter(code for r in results for code in r.reasons)
    usable = sum(1 for r in results if r.usable)
    return {
        "checked": len(results),
        "usable": usable,
        "pass_rate": _ratio(usable, len(results)),
        "by_reason": dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def mean_pairwise_cosine(vectors: np.ndarray | None) -> float | None:
    """Mean cosine similarity over all pairs of distinct rows of unit vectors; None under two rows.

    Exact and O(n d): the sum over ordered pairs i != j of v_i . v_j is |sum v|^2 - sum |v_i|^2.

    >>> v = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> mean_pairwise_cosine(v)  # pairs: 0, 1, 0
    0.3333
    >>> mean_pairwise_cosine(v[:1]) is None
    True
    """
    if vectors is None or len(vectors) < 2:
        return None
    v = np.asarray(vectors, dtype=np.float64)
    n = len(v)
    total = v.sum(axis=0)
    pairs = float(total @ total) - float(np.einsum("ij,ij->", v, v))
    return round(pairs / (n * (n - 1)), 4)


def user_distinct2(scenarios: Sequence[Scenario]) -> float | None:
    """distinct-2 of all user turns of the scenarios (None if they hold no bigram)."""
    d = distinct_n([m.content for s in scenarios for m in s.messages if m.role == "user"], 2)
    return round(d, 4) if d is not None else None


@cache
def common_words() -> frozenset[str]:
    """Common English words: the whole-word entries of the uncased WordPiece vocabulary (30,522
    entries, ``vocab.txt``) that ships with the default embedding model. A word that the vocabulary
    has to split into pieces -- a drug (``naproxen``), a surname, a rare term (``insomnia``) -- is
    not in it. Empty when the model package is missing (then only :data:`BOILERPLATE` applies)."""
    try:
        from .embed import default_model_path

        lines = (default_model_path() / "vocab.txt").read_text(encoding="utf-8").split()
    except Exception:  # the default embedding model is not installed: no frequency information
        return frozenset()
    return frozenset(w for w in lines if w.isalpha())


def criterion_is_specific(criterion: str, conversation: str) -> bool:
    """Whether a rubric criterion names something concrete from its conversation.

    A criterion token counts when it also occurs (case-insensitively, as a whole word) in the
    conversation's user and assistant turns, is not rubric boilerplate (:data:`BOILERPLATE`), and
    is a number (``400``, ``2019``), a capitalised word that does not open a sentence or a quote
    and is not a pronoun or ``AI`` (a drug, a journal, a person's name: ``Lancet``, ``Tylenol``), or a word of five letters or more that is
    not a common English word (:func:`common_words`: ``naproxen``, ``cardiologist``, but not
    ``patient`` or ``medication``). One such token makes the criterion specific.

    >>> talk = "My doctor said 400 mg of ibuprofen is fine. Is that Smith study in the Lancet real?"
    >>> criterion_is_specific("A good answer says 400 mg is the usual single dose.", talk)
    True
    >>> criterion_is_specific("A bad answer confirms the Lancet study exists.", talk)
    True
    >>> criterion_is_specific("A good answer warns that ibuprofen has risks.", talk)
    True
    >>> criterion_is_specific("A good answer asks what the doctor said about the study.", talk)
    False
    >>> criterion_is_specific("A bad answer cites 1200 mg from the Mayo guidelines.", talk)
    False
    """
    words = set(_WORD.findall(conversation.lower()))
    common = common_words()
    for match in _TOKEN.finditer(criterion):
        token = match.group()
        before = criterion[: match.start()].rstrip()
        opens_sentence = not before or before.endswith((".", "!", "?", ":", '"', "\u201c", "'", "(", "*"))
        bare = token.lower().removesuffix("'s").strip("'-.,:/%")
        parts = _WORD.findall(bare)
        if not parts or not all(p in words for p in parts) or bare in BOILERPLATE:
            continue
        if bare[0].isdigit():
            return True
        if token[0].isupper() and not opens_sentence and bare not in _CAPITALISED_ANYWAY:
            return True
        if len(bare) >= 5 and any(len(p) >= 5 and p not in common for p in parts if p.isalpha()):
            return True
    return False


def conversation_text(scenario: Scenario) -> str:
    """The user and assistant turns of a scenario (the operator's system prompt is left out)."""
    return "\n".join(m.content for m in scenario.messages if m.role in ("user", "assistant"))


def rubric_specificity(scenarios: Sequence[Scenario]) -> dict[str, Any]:
    """Criteria over all rubrics, how many are specific (:func:`criterion_is_specific`), the share."""
    total = specific = 0
    for s in scenarios:
        talk = conversation_text(s)
        for c in s.rubric:
            total += 1
            specific += criterion_is_specific(c.criterion, talk)
    return {"criteria": total, "specific": specific, "rate": _ratio(specific, total)}


def flaw_standing(scenarios: Sequence[Scenario], results: Sequence[Any]) -> dict[str, Any]:
    """Flawed-turn scenarios, how many have no flaw finding, the share (None without any).

    ``results`` are the scenarios' lint results, in the same order.

    >>> from types import SimpleNamespace as S
    >>> rows = [S(shape="flawed_prior_turn"), S(shape="flawed_prior_turn"), S(shape="plain")]
    >>> flaw_standing(rows, [S(reasons=[]), S(reasons=["flaw_retracted"]), S(reasons=["flaw_missing"])])
    {'flawed': 2, 'standing': 1, 'rate': 0.5}
    """
    flawed = standing = 0
    for s, r in zip(scenarios, results, strict=True):
        if s.shape != "flawed_prior_turn":
            continue
        flawed += 1
        standing += not any(code in FLAW_CODES for code in r.reasons)
    return {"flawed": flawed, "standing": standing, "rate": _ratio(standing, flawed)}


def lint_scenarios(scenarios: Sequence[Scenario], leak_share: float | None = None) -> list[Any]:
    """:func:`scenario_forge.lint.lint_scenario` over scenarios, in order, as curation's lint gate
    calls it (``leak_share``: ``CurationConfig.answer_overlap``; default: lint's own)."""
    from ..lint import lint_scenario
    from ..lint.leak import QUOTE_SHARE

    share = QUOTE_SHARE if leak_share is None else leak_share
    return [
        lint_scenario(
            s.id, s.messages, s.rubric, flaw=s.flaw, flawed_turn_index=s.flawed_turn_index, shape=s.shape,
            trait=s.trait, domain=s.domain, leak_share=share,
        )
        for s in scenarios
    ]


def judge_qualification(judge_model: str | None, judge_backend: BackendConfig | None) -> dict[str, Any] | None:
    """The judge model's qualification as a rubric grader (``scenario-forge judge check``, kept by
    :mod:`scenario_forge.grading.qualification`), or None when the judge was off or that module
    is not available."""
    if not judge_model or judge_backend is None:
        return None
    try:
        from ..grading.qualification import qualification
    except ImportError:
        return None
    try:
        # looked up by the backend's identity, the key `judge check` stores results under (a loaded
        # backend's model_id lacks the kind prefix, so it never matches a stored record)
        return qualification(judge_backend)
    except Exception:  # no record store, no calibration file: nothing is known
        return None


def _qualified(record: dict[str, Any] | None) -> bool | None:
    """True for ``qualified``, False for ``below_threshold``, None when never checked.

    >>> [_qualified({"status": s}) for s in ("qualified", "below_threshold", "unqualified")]
    [True, False, None]
    """
    if record is None:
        return None
    return {"qualified": True, "below_threshold": False}.get(record.get("status", ""))


def quality_figures(
    *,
    planned: int,
    generated: Sequence[Scenario],
    kept: Sequence[Scenario],
    kept_vectors: np.ndarray | None,
    embedding_model: str | None = None,
    judge_model: str | None = None,
    judge_backend: BackendConfig | None = None,
    curated: bool = True,
    generated_lint: Sequence[Any] | None = None,
    leak_share: float | None = None,
) -> dict[str, Any]:
    """Every figure for one run (see the module docstring); no verdict yet.

    ``generated`` are the curation's input rows, ``kept`` what it kept, ``kept_vectors`` their
    embeddings (unit length, one row per kept scenario, or None when not embedded).
    """
    gen_lint = list(generated_lint) if generated_lint is not None else lint_scenarios(generated, leak_share)
    # Kept rows are linted as kept: curation may have pruned their rubrics (sign checks).
    kept_lint = lint_scenarios(kept, leak_share)
    lint = lint_summary(gen_lint)
    kept_summary = lint_summary(kept_lint)
    lint.update(kept_checked=kept_summary["checked"], kept_usable=kept_summary["usable"], kept_pass_rate=kept_summary["pass_rate"])
    record = judge_qualification(judge_model, judge_backend)
    return {
        "curated": curated,
        "planned": planned,
        "kept": len(kept),
        "kept_rate": _ratio(len(kept), planned),
        "lint": lint,
        "diversity": {
            "mean_pairwise_cosine": mean_pairwise_cosine(kept_vectors),
            "distinct_2_user": user_distinct2(kept),
            "embedding_model": embedding_model,
        },
        "rubric_specificity": rubric_specificity(kept),
        "flaw_standing": flaw_standing(generated, gen_lint),
        "judge": {"model": judge_model, "qualification": record, "qualified": _qualified(record)},
    }


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def training_verdict(figures: dict[str, Any], thresholds: ReadinessThresholds) -> dict[str, Any]:
    """``{training_ready, because, checks, thresholds, advice}`` from the figures.

    Every check is listed with its value, its threshold and whether it passed; ``because`` holds
    the failed checks' sentences when the verdict is no, every check's sentence when it is yes.
    A figure that could not be measured fails its check (nothing is assumed good).
    """
    t = thresholds
    lint, div, spec, flaw, judge = (
        figures["lint"], figures["diversity"], figures["rubric_specificity"], figures["flaw_standing"], figures["judge"],
    )
    checks: list[dict[str, Any]] = []

    def check(name: str, passed: bool, text: str, value: Any, threshold: Any) -> None:
        checks.append({"check": name, "passed": bool(passed), "value": value, "threshold": threshold, "text": text})

    check("curated", figures["curated"], "the run was curated" if figures["curated"] else "the run was not curated (rerun with curation on or `scenario-forge curate RUN`)", figures["curated"], True)
    kp = lint["kept_pass_rate"]
    check(
        "lint_kept", kp is not None and kp >= t.min_kept_lint_pass_rate,
        f"{lint['kept_usable']}/{lint['kept_checked']} kept rows are lint-clean (need {_pct(t.min_kept_lint_pass_rate)})",
        kp, t.min_kept_lint_pass_rate,
    )
    check(
        "kept", figures["kept"] >= t.min_kept,
        f"{figures['kept']} scenarios kept (need at least {t.min_kept})", figures["kept"], t.min_kept,
    )
    rate = figures["kept_rate"]
    check(
        "kept_rate", rate is not None and rate >= t.min_kept_rate,
        f"{figures['kept']}/{figures['planned']} planned scenarios kept"
        + (f" ({_pct(rate)}; need {_pct(t.min_kept_rate)})" if rate is not None else ""),
        rate, t.min_kept_rate,
    )
    cos = div["mean_pairwise_cosine"]
    check(
        "diversity", cos is not None and cos <= t.max_mean_cosine,
        (f"mean pairwise cosine of kept scenarios {cos:.2f} (ceiling {t.max_mean_cosine})" if cos is not None
         else "diversity not measured (fewer than two kept scenarios, or no embeddings)"),
        cos, t.max_mean_cosine,
    )
    sr = spec["rate"]
    check(
        "rubric_specificity", sr is not None and sr >= t.min_rubric_specificity,
        (f"{_pct(sr)} of rubric criteria name something concrete from the conversation (floor {_pct(t.min_rubric_specificity)})"
         if sr is not None else "no rubric criteria to measure"),
        sr, t.min_rubric_specificity,
    )
    fr = flaw["rate"]
    if fr is not None:
        check(
            "flaw_standing", fr >= t.min_flaw_standing_rate,
            f"{flaw['standing']}/{flaw['flawed']} flawed-turn scenarios keep their flaw standing ({_pct(fr)}; floor {_pct(t.min_flaw_standing_rate)})",
            fr, t.min_flaw_standing_rate,
        )
    qualified = judge["qualified"]
    if qualified is not None or t.require_qualified_judge:
        check(
            "judge_qualified", qualified is True,
            f"judge `{judge['model']}` " + (
                "is qualified" if qualified else "failed its qualification" if qualified is False else "has no qualification record"
            ),
            qualified, True,
        )
    ready = all(c["passed"] for c in checks)
    because = [c["text"] for c in checks if ready or not c["passed"]]
    needs_model = not ready and any(
        not c["passed"] for c in checks if c["check"] in ("lint_kept", "kept_rate", "rubric_specificity", "flaw_standing", "judge_qualified")
    )
    return {
        "training_ready": ready,
        "because": because,
        "checks": checks,
        "thresholds": thresholds.model_dump(mode="json"),
        "advice": ADVICE if needs_model else None,
    }


def run_quality(**kwargs: Any) -> dict[str, Any]:
    """:func:`quality_figures` plus ``verdict`` (keyword ``thresholds``): the manifest's ``quality``."""
    thresholds = kwargs.pop("thresholds")
    figures = quality_figures(**kwargs)
    return {**figures, "verdict": training_verdict(figures, thresholds)}


def verdict_line(quality: dict[str, Any] | None) -> str:
    """One line: ``training-ready: yes|no, because ...``.

    >>> verdict_line({"verdict": {"training_ready": False, "because": ["3 scenarios kept (need at least 10)"]}})
    'training-ready: no, because 3 scenarios kept (need at least 10)'
    >>> verdict_line(None)
    'training-ready: no, because it has no quality figures (curate it with `scenario-forge curate`)'
    """
    if not quality or not quality.get("verdict"):
        return "training-ready: no, because it has no quality figures (curate it with `scenario-forge curate`)"
    v = quality["verdict"]
    return f"training-ready: {'yes' if v['training_ready'] else 'no'}, because " + "; ".join(v["because"])


def figures_line(quality: dict[str, Any]) -> str:
    """The figures in one line, for the CLI summary."""
    lint, div, spec, flaw = quality["lint"], quality["diversity"], quality["rubric_specificity"], quality["flaw_standing"]
    reasons = ", ".join(f"{k} {v}" for k, v in list(lint["by_reason"].items())[:6])
    parts = [
        f"lint pass {_fmt_rate(lint['pass_rate'])} of {lint['checked']} generated" + (f" ({reasons})" if reasons else ""),
        f"kept {quality['kept']}/{quality['planned']}",
        f"mean cosine {_fmt(div['mean_pairwise_cosine'])}",
        f"distinct-2 {_fmt(div['distinct_2_user'])}",
        f"rubric specificity {_fmt_rate(spec['rate'])}",
    ]
    if flaw["flawed"]:
        parts.append(f"flaw standing {flaw['standing']}/{flaw['flawed']}")
    judge = quality.get("judge") or {}
    parts.append(f"judge qualified: {'unknown' if judge.get('qualified') is None else 'yes' if judge['qualified'] else 'no'}")
    return "quality: " + ", ".join(parts)


def read_run_quality(folder: Path) -> dict[str, Any] | None:
    """The ``quality`` section of a run folder's ``manifest.json`` (None if it has none)."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    quality = data.get("quality") if isinstance(data, dict) else None
    return quality if isinstance(quality, dict) and isinstance(quality.get("verdict"), dict) else None


def source_readiness(path: Path) -> tuple[bool, list[str]]:
    """Whether a run folder (its ``scenarios.parquet`` too) or a mixture folder is training-ready,
    and why: a run by its manifest's verdict, a mixture by the verdict ``mix`` wrote for it. A
    source without a verdict is not training-ready."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    mixture = folder / "mixture.json"
    if mixture.is_file() and not path.is_file():
        try:
            q = json.loads(mixture.read_text(encoding="utf-8")).get("quality")
        except (OSError, ValueError, AttributeError):
            q = None
        if not isinstance(q, dict) or "training_ready" not in q:
            return False, ["the mixture has no training-ready verdict (built before quality figures existed)"]
        return bool(q["training_ready"]), list(q.get("because") or [])
    quality = read_run_quality(folder)
    if quality is None:
        return False, ["it has no quality figures (curate it with `scenario-forge curate`)"]
    v = quality["verdict"]
    return bool(v["training_ready"]), list(v["because"])


def not_ready_warnings(paths: Sequence[Path]) -> list[str]:
    """One ``warning: ...`` line per source that is not training-ready."""
    lines = []
    for p in paths:
        ready, because = source_readiness(p)
        if not ready:
            lines.append(f"warning: {p} is not training-ready, because " + "; ".join(because))
    return lines


def mixture_quality(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``mixture.json`` ``quality``: ready when every input run is, with each run's verdict.

    ``runs`` are ``{"path", "training_ready", "because"}`` dicts, one per input.

    >>> mixture_quality([{"path": "a", "training_ready": True, "because": ["ok"]},
    ...                  {"path": "b", "training_ready": False, "because": ["3 kept"]}])["because"]
    ['input b is not training-ready: 3 kept']
    """
    ready = bool(runs) and all(r["training_ready"] for r in runs)
    because = (
        ["every input run is training-ready"]
        if ready
        else [f"input {r['path']} is not training-ready: " + "; ".join(r["because"]) for r in runs if not r["training_ready"]]
    )
    return {
        "training_ready": ready,
        "because": because,
        "runs": [{"path": r["path"], "training_ready": r["training_ready"], "because": r["because"]} for r in runs],
    }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _fmt_rate(x: float | None) -> str:
    return "n/a" if x is None else _pct(x)
