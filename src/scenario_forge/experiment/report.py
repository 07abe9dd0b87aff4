"""The experiment's one report: ``experiment.json`` (every figure), ``experiment.md`` (the tables)
and ``plots/`` (drawn through :mod:`scenario_forge.figures`).

It is assembled from each arm's own evaluation (``OUT/arms/ARM/eval/eval.json``: every arm against
the baseline arm's grades on the same rows), so every number here can be traced to an eval report:

- the arm x evaluation table: paired mean difference with its bootstrap CI, the verdict, the
  Benjamini-Hochberg adjusted p (per arm, over that arm's evaluations) and the headline
  "k of n improved (k' after FDR at q)";
- persistence under the harmful and the helpful persona, per arm, and against the baseline;
- transfer (each arm's trained domains from its own mixture) and capability checks;
- compute: steps, completions and the measured training tokens against the tolerance.

>>> fmt_ci({"diff": 0.1234, "ci_low": -0.01, "ci_high": 0.25})
'+0.123 [-0.010, +0.250]'
>>> fmt_ci({"diff": None})
'–'
>>> fmt_prompts({"beneficial": 1, "standard": 11}), fmt_prompts(None)
('1 beneficial + 11 standard', '–')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..figures import new_figure, save_png
from .plan import ComputePlan, ExperimentPlan, relative_gap

REPORT_MD = "experiment.md"
REPORT_JSON = "experiment.json"
PLOTS = "plots"

#: What a run on the embedded 135M policy can and cannot show (written into every report whose
#: policy is the embedded one).
SMALL_POLICY_NOTE = (
    "The policy is SmolLM2-135M-Instruct (the embedded model) trained for a handful of GRPO steps on CPU, "
    "graded by the same 135M model as judge (measured near chance against hand labels: `scenario-forge judge "
    "check`). Such a run can show that the experiment machinery works end to end (mixing per recipe, "
    "compute-matched training, paired evaluation against the baseline, FDR counting, persistence and "
    "transfer tables) and how large the confidence intervals are at this size. It cannot show whether "
    "beneficial-trait data helps: a few steps barely move 135M weights, the judge cannot tell good "
    "answers from bad reliably, and a few dozen evaluation rows give intervals far wider than any "
    "effect the paper reports. Read every verdict here as noise unless it survives FDR, and even then "
    "as a property of this judge, not of the traits."
)


def fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def fmt_prompts(by_source: dict[str, int] | None) -> str:
    """Prompts per source as ``B beneficial + S standard``, or a dash when unknown."""
    if by_source is None:
        return "–"
    return f"{by_source.get('beneficial', 0)} beneficial + {by_source.get('standard', 0)} standard"


def fmt_ci(c: dict[str, Any] | None) -> str:
    """``diff [low, high]`` of a paired comparison, or a dash."""
    if not c or c.get("diff") is None:
        return "–"
    ci = f" [{fmt(c.get('ci_low'), True)}, {fmt(c.get('ci_high'), True)}]" if c.get("ci_low") is not None else ""
    return f"{fmt(c['diff'], True)}{ci}"


def _read_eval(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "eval.json").read_text(encoding="utf-8"))
    return data


def _comparison(eval_json: dict[str, Any]) -> dict[str, Any] | None:
    comp = eval_json["figures"].get("comparison")
    if not comp:
        return None
    keep = ("n_pairs", "model_mean", "baseline_mean", "diff", "ci_low", "ci_high", "verdict", "p_value", "p_adjusted", "fdr_significant")
    return {
        "headline": comp["fdr"]["headline"],
        "fdr": comp["fdr"],
        "tally": comp["tally"],
        "evals": {name: {k: e.get(k) for k in keep} for name, e in sorted(comp["evals"].items())},
    }


def _persistence(model: dict[str, Any]) -> dict[str, Any] | None:
    p = model.get("persistence")
    if not p:
        return None
    out: dict[str, Any] = {k: {"mean": p[k]["mean"], "scored": p[k]["scored"], "n": p[k]["n"]} for k in ("plain", "harmful", "helpful") if k in p}
    for k in ("drop", "gain"):
        if p.get(k):
            out[k] = {x: p[k].get(x) for x in ("diff", "ci_low", "ci_high", "n_pairs", "verdict")}
    return out


def collect(plan: ExperimentPlan, compute: ComputePlan, eval_set: Any, trainings: dict[str, Any], evals: dict[str, Path]) -> dict[str, Any]:
    """Every figure of the report as one JSON-able dict."""
    from ..backends.factory import backend_identity

    config = plan.config
    base = config.baseline
    base_tokens = trainings[base].tokens
    arms: dict[str, Any] = {}
    for a in plan.arms:
        ev = _read_eval(evals[a.name])
        model = ev["figures"]["models"][a.name]
        planned = next(c for c in compute.arms if c.arm == a.name)
        t = trainings[a.name]
        gap = relative_gap(t.tokens, base_tokens) if t.tokens is not None and base_tokens else None
        transfer = ev["figures"].get("transfer")
        arms[a.name] = {
            "recipe": a.recipe,
            "mixture": str(a.mix.out),
            "compute": {
                "steps": t.global_step, "completions": t.completions, "train_rows": planned.train_rows,
                "train_rows_by_source": planned.train_rows_by_source, "prompts": planned.prompts,
                "prompts_planned": planned.prompts_by_source, "prompts_used": t.prompts_used,
                "passes_over_train_split": planned.passes, "mean_prompt_tokens": planned.mean_prompt_tokens,
                "estimated_tokens": planned.estimated_tokens, "estimated_gap": planned.estimated_gap,
                "measured_tokens": t.tokens, "measured_gap": gap,
                "within_tolerance": None if gap is None else abs(gap) <= compute.tolerance,
                "mean_completion_tokens": t.mean_completion_tokens, "train_wall_s": t.wall_s, "resumed_from": t.resumed_from,
            },
            "overall": {k: model["overall"][k] for k in ("mean", "scored", "n", "unscored", "refusal_rate")},
            "capability": {name: {k: s[k] for k in ("mean", "scored", "n")} for name, s in sorted(model["capability"].items())},
            "persistence": _persistence(model),
            "comparison": _comparison(ev) if a.name != base else None,
            "selective_persistence": _selective(ev.get("figures", {}).get("selective_persistence")) if a.name != base else None,
            "transfer": None if transfer is None or a.name == base else {
                "trained_domains": transfer["trained_domains"],
                "in_domain": {k: transfer["in_domain"].get(k) for k in ("diff", "ci_low", "ci_high", "n_pairs", "verdict")},
                "transfer": {k: transfer["transfer"].get(k) for k in ("diff", "ci_low", "ci_high", "n_pairs", "verdict")},
            },
            "eval_folder": str(evals[a.name]),
        }
    return {
        "name": config.name,
        "baseline": base,
        "arms_order": [a.name for a in plan.arms],
        "policy": config.policy,
        "judges": {
            "reward": backend_identity(config.judges.reward),
            "eval": backend_identity(plan.eval_judge),
            "same_model": plan.judges_same_model,
        },
        "budget": {**config.budget.model_dump(mode="json"), "completions_per_arm": compute.completions},
        "compute_matched": all(x["compute"]["within_tolerance"] is not False for x in arms.values()),
        "eval_set": eval_set.model_dump(mode="json"),
        "suites": list(config.eval.suites),
        "fdr_q": config.eval.fdr_q,
        "arms": arms,
        "config": config.model_dump(mode="json"),
    }


def _selective(s: dict[str, Any] | None) -> dict[str, Any] | None:
    if not s:
        return None
    return {k: {x: s[k].get(x) for x in ("diff", "ci_low", "ci_high", "n_pairs", "verdict")} for k in ("drop_reduction", "gain_difference") if s.get(k)}


def markdown(fig: dict[str, Any], plots: dict[str, Path]) -> str:
    base = fig["baseline"]
    others = [a for a in fig["arms_order"] if a != base]
    q = fig["fdr_q"]
    lines = [f"# Experiment {fig['name']}", ""]
    lines += [f"Policy `{fig['policy']}`; baseline arm **{base}**; arms: " + ", ".join(
        f"{a} (recipe `{fig['arms'][a]['recipe']}`)" for a in fig["arms_order"]) + ".", ""]
    lines += ["## Headline", ""]
    for a in others:
        comp = fig["arms"][a]["comparison"]
        lines.append(f"- **{a}** vs {base}: {comp['headline'] if comp else 'no comparison'}")
    lines += [""]
    j = fig["judges"]
    lines += [f"Reward judge `{j['reward']}`; evaluation judge `{j['eval']}`."]
    if j["same_model"]:
        lines += ["", ("**Warning: the evaluation judge is the reward judge's model.** A policy that learned to game "
                       "its grader would read as improved here.")]
    lines += ["", "## Compute", ""]
    b = fig["budget"]
    lines += [(f"Every arm: {b['max_steps']} optimizer steps x {b['batch_size'] * b['gradient_accumulation_steps']} completions "
               f"({b['num_generations']} per prompt, at most {b['max_completion_length']} new tokens) = "
               f"{b['completions_per_arm']} completions. Training tokens (prompt + completion, TRL's `num_input_tokens_seen`) "
               f"must lie within {b['token_tolerance']:.0%} of the baseline's: checked on an estimate before training "
               f"(refused outside it), measured after. Short train splits: `{b['short_data']}`. Each arm's prompts are drawn "
               "before training from its train split, stratified by source (beneficial / standard) in proportion to the "
               "split by largest remainder, seeded; *planned* is that draw, *used* the prompts the trainer scored "
               "(its `rewards.jsonl`)."), ""]
    lines += ["| arm | steps | completions | train rows (beneficial + standard) | prompts planned | prompts used | passes | mean prompt tokens | est. tokens | measured tokens | vs baseline | within tolerance | train time |",
              "|---|---:|---:|---|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for a in fig["arms_order"]:
        c = fig["arms"][a]["compute"]
        gap = "–" if c["measured_gap"] is None else f"{c['measured_gap']:+.1%}"
        within = "–" if c["within_tolerance"] is None else ("yes" if c["within_tolerance"] else "**no**")
        rows = f"{c['train_rows']} ({c['train_rows_by_source']['beneficial']} + {c['train_rows_by_source']['standard']})"
        lines.append(f"| {a} | {c['steps']} | {c['completions']} | {rows} | {fmt_prompts(c['prompts_planned'])} | "
                     f"{fmt_prompts(c['prompts_used'])} | {c['passes_over_train_split']} | "
                     f"{c['mean_prompt_tokens']} | {c['estimated_tokens']:,} | {'–' if c['measured_tokens'] is None else format(c['measured_tokens'], ',')} | "
                     f"{gap} | {within} | {c['train_wall_s']:.0f} s |")
    none = [a for a in others if not fig["arms"][a]["compute"]["prompts_planned"]["beneficial"]]
    if none:
        lines += ["", f"**No beneficial prompt:** {', '.join(none)} trained on standard prompts only (warned before training): "
                  "its comparison with the baseline says nothing about the traits."]
    if not fig["compute_matched"]:
        lines += ["", "**Compute not matched:** at least one arm's measured training tokens fall outside the tolerance."]
    es = fig["eval_set"]
    lines += ["", "## Evaluation set", "",
              f"The held-out splits of arm `{es['source_arm']}`'s mixture, less every row whose scenario (or standard row) "
              f"any arm trained on, are the rows every arm answers: " + (", ".join(f"{k} {v}" for k, v in es["splits"].items()) or "none")
              + ". Removed as trained-on: " + (", ".join(f"{k} {v}" for k, v in es["removed_trained"].items() if v) or "none")
              + (". Empty after that: " + ", ".join(es["empty_splits"]) if es["empty_splits"] else "")
              + ". Suites: " + (", ".join(f"`{s}`" for s in fig["suites"]) or "none") + ".", ""]
    lines += ["## Arm x evaluation", "",
              (f"Paired mean difference (arm - {base}) over the same rows with its 95% bootstrap CI; verdict by the CI; "
               f"p adjusted by Benjamini-Hochberg over each arm's evaluations at q={q:g}."), ""]
    names = sorted({n for a in others if fig["arms"][a]["comparison"] for n in fig["arms"][a]["comparison"]["evals"]})
    if names and others:
        lines += ["| evaluation | " + " | ".join(others) + " |", "|---|" + "---|" * len(others)]
        for n in names:
            cells = []
            for a in others:
                e = (fig["arms"][a]["comparison"] or {}).get("evals", {}).get(n)
                if not e:
                    cells.append("–")
                    continue
                mark = " (FDR)" if e.get("fdr_significant") else ""
                padj = "" if e.get("p_adjusted") is None else f", p_adj {e['p_adjusted']:.3f}"
                cells.append(f"{fmt_ci(e)} n={e['n_pairs']} {e['verdict']}{mark}{padj}")
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", "## Persistence", "",
              ("Mean score without a persona, under the harmful and under the helpful operator persona; drop = plain - harmful, "
               "gain = helpful - plain (paired by scenario). Against the baseline: drop reduction > 0 means the arm drops less "
               "under the harmful persona; gain difference near 0 means it stays as steerable toward good."), ""]
    lines += ["| arm | plain | harmful | helpful | drop | gain | drop reduction vs baseline | gain difference vs baseline |",
              "|---|---:|---:|---:|---|---|---|---|"]
    for a in fig["arms_order"]:
        p = fig["arms"][a]["persistence"]
        s = fig["arms"][a]["selective_persistence"] or {}
        if not p:
            lines.append(f"| {a} | – | – | – | – | – | – | – |")
            continue
        lines.append(f"| {a} | {fmt((p.get('plain') or {}).get('mean'))} | {fmt((p.get('harmful') or {}).get('mean'))} | "
                     f"{fmt((p.get('helpful') or {}).get('mean'))} | {fmt_ci(p.get('drop'))} | {fmt_ci(p.get('gain'))} | "
                     f"{fmt_ci(s.get('drop_reduction'))} | {fmt_ci(s.get('gain_difference'))} |")
    lines += ["", "## Transfer", "", (f"Beneficial rows of the evaluation set, arm - {base}, on the arm's trained domains "
                                       "(from its own mixture) and on every other domain."), "",
              "| arm | trained domains | in domain | transfer |", "|---|---|---|---|"]
    for a in others:
        t = fig["arms"][a]["transfer"]
        if not t:
            lines.append(f"| {a} | – | – | – |")
            continue
        lines.append(f"| {a} | {', '.join(t['trained_domains']) or '(none)'} | {fmt_ci(t['in_domain'])} n={t['in_domain']['n_pairs']} | "
                     f"{fmt_ci(t['transfer'])} n={t['transfer']['n_pairs']} |")
    caps = sorted({n for a in fig["arms_order"] for n in fig["arms"][a]["capability"]})
    lines += ["", "## Capability checks", "", "Mean score (exact match / multiple choice) beside the trait scores.", ""]
    if caps:
        lines += ["| check | " + " | ".join(fig["arms_order"]) + " |", "|---|" + "---:|" * len(fig["arms_order"])]
        for n in caps:
            cells = []
            for a in fig["arms_order"]:
                c = fig["arms"][a]["capability"].get(n)
                cells.append("–" if not c else f"{fmt(c['mean'])} ({c['scored']}/{c['n']})")
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    else:
        lines.append("No capability checks in this evaluation.")
    lines += ["", "## Overall", "", "| arm | mean | scored / n | refusal rate |", "|---|---:|---:|---:|"]
    for a in fig["arms_order"]:
        o = fig["arms"][a]["overall"]
        rate = "–" if o["refusal_rate"] is None else f"{o['refusal_rate']:.0%}"
        lines.append(f"| {a} | {fmt(o['mean'])} | {o['scored']}/{o['n']} | {rate} |")
    if plots:
        lines += ["", "## Plots", ""] + [f"![{k}]({PLOTS}/{p.name})" for k, p in plots.items()]
    if fig["policy"] == "embedded":
        lines += ["", "## What this run can and cannot show", "", SMALL_POLICY_NOTE]
    lines += ["", "Each arm's own report: " + ", ".join(f"`{fig['arms'][a]['eval_folder']}/eval.md`" for a in fig["arms_order"]), ""]
    return "\n".join(lines)


def _forest(fig: dict[str, Any], path: Path) -> Path | None:
    base = fig["baseline"]
    rows = []
    for a in fig["arms_order"]:
        comp = fig["arms"][a]["comparison"]
        for n, e in sorted((comp or {}).get("evals", {}).items()):
            if e["diff"] is not None:
                rows.append((f"{a}: {n}", e["diff"], e.get("ci_low"), e.get("ci_high"), bool(e.get("fdr_significant"))))
    if not rows:
        return None
    f = new_figure((7.5, 1.0 + 0.32 * len(rows)))
    ax = f.subplots()
    for i, (_, d, lo, hi, sig) in enumerate(rows):
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [i, i], color="0.4")
        ax.plot([d], [i], "o", color="tab:green" if sig else "tab:blue")
    ax.axvline(0, color="0.2", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"paired difference vs {base} (95% CI; green: significant after FDR)")
    return save_png(f, path, tight=True)


def _persistence_plot(fig: dict[str, Any], path: Path) -> Path | None:
    arms = [a for a in fig["arms_order"] if fig["arms"][a]["persistence"]]
    if not arms:
        return None
    f = new_figure((1.5 + 1.6 * len(arms), 3.0))
    ax = f.subplots()
    width = 0.26
    for k, (variant, color) in enumerate((("plain", "0.6"), ("harmful", "tab:red"), ("helpful", "tab:green"))):
        values = [((fig["arms"][a]["persistence"] or {}).get(variant) or {}).get("mean") for a in arms]
        ax.bar([i + (k - 1) * width for i in range(len(arms))], [v or 0.0 for v in values], width, label=variant, color=color)
    ax.set_xticks(range(len(arms)), arms)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean score")
    ax.legend(fontsize=7)
    return save_png(f, path, tight=True)


def _tokens_plot(fig: dict[str, Any], path: Path) -> Path | None:
    arms = fig["arms_order"]
    measured = [fig["arms"][a]["compute"]["measured_tokens"] for a in arms]
    if any(m is None for m in measured):
        return None
    f = new_figure((1.5 + 1.3 * len(arms), 2.8))
    ax = f.subplots()
    ax.bar(range(len(arms)), measured, color="tab:blue")
    base = fig["arms"][fig["baseline"]]["compute"]["measured_tokens"]
    tol = fig["budget"]["token_tolerance"]
    ax.axhspan(base * (1 - tol), base * (1 + tol), color="tab:green", alpha=0.15, label=f"baseline ±{tol:.0%}")
    ax.set_xticks(range(len(arms)), arms)
    ax.set_ylabel("training tokens (measured)")
    ax.legend(fontsize=7)
    return save_png(f, path, tight=True)


def write_experiment_report(
    plan: ExperimentPlan, compute: ComputePlan, eval_set: Any, trainings: dict[str, Any], evals: dict[str, Path]
) -> Any:
    """Write ``experiment.json``, ``experiment.md`` and the plots into the experiment folder."""
    from .run import ExperimentResult

    out = plan.config.out
    fig = collect(plan, compute, eval_set, trainings, evals)
    plots: dict[str, Path] = {}
    for name, draw in (("comparisons", _forest), ("persistence", _persistence_plot), ("training_tokens", _tokens_plot)):
        path = draw(fig, out / PLOTS / f"{name}.png")
        if path is not None:
            plots[name] = path
    atomic_write_text(out / REPORT_JSON, json.dumps(fig, indent=2, default=str))
    atomic_write_text(out / REPORT_MD, markdown(fig, plots))
    return ExperimentResult(out=out, files={"markdown": out / REPORT_MD, "json": out / REPORT_JSON, **plots}, figures=fig)
