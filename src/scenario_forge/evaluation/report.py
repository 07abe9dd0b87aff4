"""Write the evaluation report: ``eval.md``, ``eval.json`` (every figure), PNG plots, ``grades.parquet``.

Every file is written through a temp file and a rename, so a report is either the previous one or
the new one, never half of each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from . import plots
from .metrics import PERSISTENCE
from .records import GradeRow, write_grades

REPORT_MD = "eval.md"
REPORT_JSON = "eval.json"
GRADES = "grades.parquet"
PLOTS = "plots"


def _f(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _ci(d: dict[str, Any]) -> str:
    if d.get("ci_low") is None:
        return "–"
    return f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def write_plots(figures: dict[str, Any], folder: Path, model_label: str, baseline_label: str | None) -> list[str]:
    written: list[Path | None] = []
    for label, data in figures["models"].items():
        written.append(plots.heatmap(data["domain_trait"], f"{label}: mean trait score", folder / f"heatmap_{label}.png"))
    if baseline_label is not None:
        m = {(t["domain"], t["trait"]): t["mean"] for t in figures["models"][model_label]["domain_trait"]}
        b = {(t["domain"], t["trait"]): t["mean"] for t in figures["models"][baseline_label]["domain_trait"]}
        diff = [
            {"domain": d, "trait": t, "mean": m[(d, t)] - b[(d, t)]}
            for (d, t) in sorted(set(m) & set(b))
            if m[(d, t)] is not None and b[(d, t)] is not None
        ]
        written.append(plots.heatmap(diff, f"{model_label} - {baseline_label}", folder / "heatmap_difference.png", diverging=True))
        evals = figures["comparison"]["evals"]
        names = [n for n, e in evals.items() if e["n_pairs"]]
        written.append(
            plots.paired_bars(
                names,
                {model_label: [evals[n]["model_mean"] for n in names], baseline_label: [evals[n]["baseline_mean"] for n in names]},
                "per-eval mean score (paired rows)",
                folder / "paired_bars.png",
            )
        )
    else:
        splits = figures["models"][model_label]["splits"]
        names = list(splits)
        written.append(plots.paired_bars(names, {model_label: [splits[n]["mean"] for n in names]}, "mean score per split", folder / "split_bars.png"))
    persist = {label: data["persistence"] for label, data in figures["models"].items() if data["persistence"]}
    if persist:
        names = list(PERSISTENCE)
        written.append(
            plots.paired_bars(
                [f"{n} persona" if n != "plain" else "no persona" for n in names],
                {label: [p[n]["mean"] for n in names] for label, p in persist.items()},
                "persistence: score without / with an operator persona",
                folder / "persistence.png",
            )
        )
    return [str(p.relative_to(folder.parent)) for p in written if p is not None]


#: per adapter, the figures beside the mean in the suites table
_SUITE_EXTRAS = {
    "rubric": [("healthbench_score", "HealthBench score")],
    "multiple_choice": [("accuracy", "accuracy")],
    "exact_match": [("accuracy", "accuracy")],
    "pushback": [("flip_rate", "flip rate"), ("plain_accuracy", "plain accuracy"), ("pushed_accuracy", "pushed accuracy"),
                 ("adopted_wrong_answer_rate", "adopted the wrong answer")],
    "judged": [],
}


def _suites_markdown(suites: dict[str, Any]) -> list[str]:
    """One row per (suite, model): its mean, scored/unscored counts and the adapter's own figures."""
    if not suites:
        return []
    lines = ["## External suites", "",
             ("Rubric suites are scored as HealthBench scores them; multiple-choice and exact-match suites are capability "
              "checks; pushback suites ask each question plain and again after the user pushes a wrong answer (flip rate = "
              "share of first-right answers that flip); judged suites are rated 1-10 by the judge with the suite's grading prompt."),
             ""]
    rows = []
    for name, s in suites.items():
        for label, f in s["models"].items():
            summ = f["summary"]
            extras = "; ".join(f"{title} {_f(f.get(key))}" for key, title in _SUITE_EXTRAS.get(s["kind"], []))
            rows.append([name, s["kind"], label, _f(summ["mean"]), f"{summ['scored']}/{summ['n']}", extras or "–"])
    lines += _table(["suite", "adapter", "model", "mean", "scored", "figures"], rows) + [""]
    for name, s in suites.items():
        if s["kind"] != "rubric":
            continue
        tags = sorted({t for f in s["models"].values() for t in f.get("tags", {})})
        if tags:
            body = [[t] + [_f(f["tags"][t]["score"]) if t in f.get("tags", {}) else "" for f in s["models"].values()] for t in tags]
            lines += [f"**{name}**: HealthBench tag scores", ""] + _table(["tag"] + list(s["models"]), body) + [""]
    return lines


def _qualification(q: dict[str, Any] | None) -> str:
    """The judge's `scenario-forge judge check` standing, for the report's header line."""
    if not q:
        return ""
    if q.get("status") == "unqualified":
        return " (no qualification: run `scenario-forge judge check`)"
    return (f" ({'qualified' if q.get('status') == 'qualified' else 'NOT qualified'}: macro-F1 {q['macro_f1']:.3f}, "
            f"accuracy {q['accuracy']:.3f} on {q['n']} hand-labelled verdicts)")


def markdown(meta: dict[str, Any], figures: dict[str, Any], model_label: str, baseline_label: str | None) -> str:
    lines = [f"# Evaluation: {model_label}" + (f" vs {baseline_label}" if baseline_label else ""), ""]
    lines += [f"- mixture: `{meta['mixture']}` (splits: {', '.join(f'{s} ({n})' for s, n in meta['splits'].items())})"]
    for label, ident in meta["models"].items():
        lines.append(f"- {label}: `{ident}`")
    lines += [f"- judge: `{meta['judge']}`" + _qualification(meta.get("judge_qualification")),
              f"- refusal detection: {meta['refusal']}",
              f"- answer sampling: {json.dumps(meta['answer_sampling'])}",
              (f"- bootstrap: {meta['bootstrap']} resamples, {int(100 * meta['confidence'])}% CIs, seed {meta['seed']}; "
               f"a verdict needs at least {meta['min_pairs']} pairs"), ""]
    lines += [("Scores are HealthBench rubric scores (exact match for standard rows): per answer, met points over "
               "positive points, unclipped (it can be negative); each mean is the mean of those clipped to [0, 1]. "
               "Answers that could not be scored (any criterion the judge could not read after its retries) are "
               "excluded from every mean and counted in the *unscored* column."), ""]

    lines += ["## Scores by split", ""]
    rows = []
    for label, data in figures["models"].items():
        for split, s in data["splits"].items():
            unscored = f"{s['unscored']} ({s['unscoreable']} judge, {s['generation_failed']} gen)"
            rows.append([label, split, str(s["n"]), _f(s["mean"]), unscored, _pct(s["refusal_rate"]), _f(s["mean_non_refused"])])
    lines += _table(["model", "split", "n", "mean", "unscored", "refusal rate", "mean (non-refused)"], rows) + [""]

    lines += ["## Mean trait score by domain × trait", ""]
    for label, data in figures["models"].items():
        table = data["domain_trait"]
        if not table:
            continue
        traits = sorted({t["trait"] for t in table})
        grid = {(t["domain"], t["trait"]): t for t in table}
        body = []
        for domain in sorted({t["domain"] for t in table}):
            body.append([domain] + [
                f"{_f(grid[(domain, t)]['mean'])} (n={grid[(domain, t)]['scored']})" if (domain, t) in grid else ""
                for t in traits
            ])
        lines += [f"**{label}**", ""] + _table(["domain"] + traits, body) + [""]

    capability = {label: d.get("capability") or {} for label, d in figures["models"].items()}
    if any(capability.values()):
        lines += ["## Capability checks", "",
                  ("Beside the trait scores: held-out standard rows (exact match) and capability suites, so a "
                   "capability cost shows next to a trait gain."), ""]
        names = sorted({n for c in capability.values() for n in c})
        labels = list(capability)
        rows = [[name] + [f"{_f(capability[label][name]['mean'])} (n={capability[label][name]['scored']})"
                          if name in capability[label] else "" for label in labels] for name in names]
        lines += _table(["check"] + labels, rows) + [""]

    persist = {label: d["persistence"] for label, d in figures["models"].items() if d["persistence"]}
    if persist:
        lines += ["## Persistence under an operator persona", "",
                  "Drop = plain − harmful persona, gain = helpful persona − plain, paired by scenario.", ""]
        rows = []
        for label, p in persist.items():
            drop, gain = p.get("drop", {}), p.get("gain", {})
            rows.append([label, _f(p["plain"]["mean"]), _f(p["harmful"]["mean"]), _f(p["helpful"]["mean"]),
                         f"{_f(drop.get('diff'), True)} {_ci(drop) if drop else ''}",
                         f"{_f(gain.get('diff'), True)} {_ci(gain) if gain else ''}",
                         str(drop.get("n_pairs", 0))])
        lines += _table(["model", "no persona", "harmful persona", "helpful persona", "drop [CI]", "gain [CI]", "pairs"], rows)
        lines.append("")
        sel = figures.get("selective_persistence")
        if sel:
            dr, gd = sel["drop_reduction"], sel["gain_difference"]
            text = (
                "**Selective persistence** (paired by scenario): the model's drop is smaller than the baseline's by "
                f"{_f(dr['diff'], True)} {_ci(dr)} ({dr['verdict']}); its gain differs by "
                f"{_f(gd['diff'], True)} {_ci(gd)} ({gd['verdict']}). Selective persistence = a drop reduction "
                "above 0 with a gain difference near 0."
            )
            lines += [text, ""]

    lines += _suites_markdown(figures.get("suites") or {})

    comparison = figures.get("comparison")
    if comparison:
        tally = comparison["tally"]
        text = (
            f"{tally['better']} of {tally['evals']} evals better, {tally['worse']} worse, "
            f"{tally['no_significant_difference']} without a significant difference, {tally['too_few_pairs']} with too few pairs "
            f"(mean difference positive in {tally['mean_diff_positive']}, negative in {tally['mean_diff_negative']}). "
            "An eval is a split × trait (split × task for standard rows); better/worse = the bootstrap CI of the "
            "mean paired difference excludes 0."
        )
        lines += ["## Model vs baseline", ""]
        fdr = comparison.get("fdr")
        if fdr:
            lines += [(f"**{fdr['headline']}**; {fdr['declined']} declined ({fdr['declined_after_fdr']} after FDR), "
                       f"{fdr['no_change']} without a significant change. Benjamini–Hochberg over all {fdr['n']} evals "
                       "with pairs (paired-bootstrap p-values; an eval with too few pairs enters with p = 1)."), ""]
        lines += [text, ""]
        rows = [[name, str(e["n_pairs"]), _f(e["model_mean"]), _f(e["baseline_mean"]), _f(e["diff"], True), _ci(e),
                 f"{e['row_wins']}/{e['row_losses']}/{e['row_ties']}", _p(e.get("p_value")), _p(e.get("p_adjusted")),
                 e["verdict"] + (" (FDR)" if e.get("fdr_significant") else "")]
                for name, e in comparison["evals"].items()]
        lines += _table(["eval", "pairs", model_label, baseline_label or "", "diff", "CI", "rows W/L/T", "p", "p (BH)", "verdict"],
                        rows) + [""]
        transfer = figures.get("transfer")
        if transfer:
            trained = ", ".join(transfer["trained_domains"]) or "none"
            origin = {"mixture": " (the mixture's beneficial training rows)", "override": " (--trained-domain)"}
            lines += ["## Transfer", "", (f"Trained domains: {trained}{origin.get(str(meta.get('trained_domains_from')), '')}; "
                                          "transfer = every other domain (beneficial rows of the held-out splits)."), ""]
            rows = []
            for name in ("in_domain", "transfer"):
                e = transfer[name]
                rows.append([name.replace("_", " "), str(e["n_pairs"]), _f(e["model_mean"]), _f(e["baseline_mean"]),
                             _f(e["diff"], True), _ci(e), e["verdict"]])
            for domain, e in transfer["domains"].items():
                rows.append([f"  {domain}{' (trained)' if e['trained'] else ''}", str(e["n_pairs"]), _f(e["model_mean"]),
                             _f(e["baseline_mean"]), _f(e["diff"], True), _ci(e), e["verdict"]])
            lines += _table(["domains", "pairs", model_label, baseline_label or "", "diff", "CI", "verdict"], rows) + [""]

    if meta.get("plots"):
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in meta["plots"]] + [""]
    return "\n".join(lines)


def write_report(
    out: Path, meta: dict[str, Any], figures: dict[str, Any], grades: list[GradeRow], model_label: str, baseline_label: str | None
) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    write_grades(out / GRADES, grades)
    meta = {**meta, "plots": write_plots(figures, out / PLOTS, model_label, baseline_label)}
    atomic_write_text(out / REPORT_JSON, json.dumps({"meta": meta, "figures": figures}, indent=2, default=str))
    atomic_write_text(out / REPORT_MD, markdown(meta, figures, model_label, baseline_label))
    return {"markdown": out / REPORT_MD, "json": out / REPORT_JSON, "grades": out / GRADES, "plots": out / PLOTS}
