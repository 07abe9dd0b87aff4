"""``generate --plan-only``: the plan, the requests it will send and a token estimate; writes nothing.

What is counted (first attempts; re-asks and repairs come on top and are in a run's manifest):

- plain-text path (every backend): per scenario 4 brief requests (one per field), 1 operator
  request if its pressure has an operator persona, one request per user turn, one per assistant
  turn in between (user turns - 1), and one per rubric slot (6);
- structured path (a backend that takes JSON schemas, ``--structured-output auto``): 1 brief
  request, the same dialogue requests, and 1 rubric request;
- capable path (``--path capable``, or ``auto`` on a backend that takes JSON schemas by default):
  understanding, ideation, rollout turns and one rubric per scenario
  (:mod:`scenario_forge.generation.capable.estimate`);
- curation (when on): with the LLM judge, 3 judge requests per generated scenario (one per
  dimension), and with sign checks 1 request per rubric criterion, counted at the most criteria a
  rubric may have (10; the plain-text path writes 6). These are upper bounds: a rejected scenario
  is never judged, and judge verdicts are cached.

Tokens: completion tokens are bounded by each request kind's ``max_tokens`` (the sampling config).
Prompt tokens are the template rendered for the plan's first scenario with the pre-flight check's
one-word brief and two-message history (characters / 4, the usual rule of thumb for English), plus, for what the request carries
from earlier steps, those steps' ``max_tokens``: a brief field carries the fields before it, a user
turn the brief and every earlier turn, an assistant turn the turns before it, a rubric request the
brief and the last user turn. Both token figures are therefore upper bounds on the first attempts;
a model that stops early (they mostly do) uses fewer.

Nothing here loads a model or writes a file; the plan is held as columns, so a million scenarios
are estimated in about the time planning takes.

``generate --estimate N`` (:func:`pilot_estimate`) measures instead of bounding: it runs a small
pilot (``--pilot-n`` scenarios, the same config otherwise) on the real backend into a temporary
folder, then scales the pilot's requests, tokens and server-seconds per planned scenario to N.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..config import GenerateConfig, SamplingParams
from ..errors import ConfigError
from ..planning import plan_selection
from ..prompts import PromptSet
from ..records import Brief, Criterion, Message
from ..store import RunStore
from .brief import FIELDS
from .preflight import check_templates
from .rubric import FLAW_SLOTS, MAX_CRITERIA, MIN_CRITERIA, SLOTS


class StageEstimate(BaseModel):
    """Requests and token upper bounds of one request kind over the whole run."""

    model_config = ConfigDict(extra="forbid")

    requests: int
    prompt_tokens: int
    completion_tokens: int


class RunPlan(BaseModel):
    """What ``generate`` would do with this config."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    folder: str
    resumes: bool
    n: int
    shards: int
    shard_size: int
    cells: dict[str, int]
    pressures: dict[str, int]
    user_turns: int
    plain: dict[str, StageEstimate]
    structured: dict[str, StageEstimate]
    capable: dict[str, StageEstimate]
    curation: dict[str, StageEstimate]

    @staticmethod
    def total(stages: dict[str, StageEstimate]) -> StageEstimate:
        return StageEstimate(
            requests=sum(s.requests for s in stages.values()),
            prompt_tokens=sum(s.prompt_tokens for s in stages.values()),
            completion_tokens=sum(s.completion_tokens for s in stages.values()),
        )


def prompt_tokens(text: str) -> int:
    """The characters / 4 estimate of a prompt's tokens.

    >>> prompt_tokens(""), prompt_tokens("abcd"), prompt_tokens("abcde")
    (0, 1, 2)
    """
    return math.ceil(len(text) / 4)


def _base_tokens(prompts: PromptSet, name: str, **variables: Any) -> int:
    return sum(prompt_tokens(m.content) for m in prompts.render(name, **variables))


def stage_estimate(requests: int, prompt: float, sampling: SamplingParams) -> StageEstimate:
    return StageEstimate(requests=int(requests), prompt_tokens=int(prompt), completion_tokens=int(requests) * sampling.max_tokens)


def estimate_run(config: GenerateConfig) -> RunPlan:
    """Plan ``config`` and count its requests and tokens; loads no model, writes nothing."""
    from .capable.estimate import capable_stages
    from .run import run_identity

    taxonomy = config.selection.taxonomy
    prompts = PromptSet(config.prompts)
    seeds = plan_selection(config.selection, config.n, config.seed)
    first = seeds[0]
    check_templates(prompts, taxonomy, first)
    _, fingerprint, run_id, root = run_identity(config, prompts)
    resumes = RunStore.check(root, fingerprint)

    # The preflight's own sample values (one-word brief fields, a two-message history): a few
    # tokens over the empty template, and every template is known to render with them.
    domain, trait = taxonomy.domain(first.domain), taxonomy.trait(first.trait)
    base = {
        "domain": domain, "trait": trait, "facet": trait.facets[0] if trait.facets else None,
        "pressure": taxonomy.pressure(first.pressure), "persona": domain.personas[0].description,
        "flaw": domain.flaws[0].label, "prefix": "", "retry": False,
    }
    brief = Brief(situation="s s s s s.", user_goal="g g g g.", key_facts="f f f f.", trap="t t t t.")
    history = [Message(role="user", content="u"), Message(role="assistant", content="a")]
    s = config.sampling
    b_brief = _base_tokens(prompts, "brief.j2", **base, field="situation", written=brief.model_dump())
    b_brief_json = _base_tokens(prompts, "brief_json.j2", **base, error="")
    b_operator = _base_tokens(prompts, "operator.j2", **base, brief=brief)
    b_user = _base_tokens(
        prompts, "user_turn.j2", **base, brief=brief, history=history, turn=1, escalation="", challenge_flaw=False,
        claim="", stance="rely",
    )
    b_assistant = _base_tokens(prompts, "assistant_turn.j2", **base, history=history, plant_flaw=False, operator="")
    b_rubric = _base_tokens(
        prompts, "rubric.j2", **base, slot=SLOTS[0].name, brief=brief, last_user="u", claim="", correct="",
    )
    b_rubric_json = _base_tokens(
        prompts, "rubric_json.j2", **base, brief=brief, messages=history, min_criteria=MIN_CRITERIA,
        max_criteria=MAX_CRITERIA, error="", claim="", correct="",
    )

    cols = seeds.columns
    turns = cols["turns"].astype(np.int64)
    operator_by_pressure = np.array([bool(p.operator_persona) for p in taxonomy.pressures])
    n_operator = int(operator_by_pressure[cols["pressure"]].sum())
    n = len(seeds)
    T = int(turns.sum())
    pairs_before = int((turns * (turns - 1) // 2).sum())  # sum over scenarios of 0 + 1 + ... + (T-1)
    pairs_asst = int(((turns - 1) * (turns - 2) // 2).clip(min=0).sum())
    u, a = s.user_turn.max_tokens, s.assistant_turn.max_tokens

    def dialogue(brief_tokens: int) -> dict[str, StageEstimate]:
        return {
            "operator": stage_estimate(n_operator, n_operator * (b_operator + brief_tokens), s.operator),
            "user_turn": stage_estimate(T, T * (b_user + brief_tokens) + (u + a) * pairs_before, s.user_turn),
            "assistant_turn": stage_estimate(
                T - n, (T - n) * b_assistant + u * pairs_before + a * pairs_asst, s.assistant_turn,
            ),
        }

    k = len(FIELDS)
    # every scenario's six slots, and a flawed-turn scenario's two that quote its flaw
    slots = n * len(SLOTS) + FLAW_SLOTS * int(np.asarray(cols["flawed"], dtype=bool).sum())
    brief_plain = k * s.brief.max_tokens
    plain = {
        "brief": stage_estimate(n * k, n * (k * b_brief + s.brief.max_tokens * k * (k - 1) // 2), s.brief),
        **dialogue(brief_plain),
        "rubric": stage_estimate(slots, slots * (b_rubric + brief_plain + u), s.rubric),
    }
    brief_json = s.brief_json.max_tokens
    structured = {
        "brief": stage_estimate(n, n * b_brief_json, s.brief_json),
        **dialogue(brief_json),
        "rubric": stage_estimate(
            n, n * (b_rubric_json + brief_json) + T * u + (T - n) * a + n_operator * s.operator.max_tokens, s.rubric_json,
        ),
    }
    curation: dict[str, StageEstimate] = {}
    if config.curate:
        judge_prompts = PromptSet(config.curation.prompts)
        criteria = n * MAX_CRITERIA  # upper bound: MAX_CRITERIA per scenario
        rubric_tokens = MAX_CRITERIA * max(s.rubric.max_tokens, s.rubric_json.max_tokens // MIN_CRITERIA)
        if config.curation.judge:
            from ..curation.judge import QUESTIONS
            from ..curation.judge import TEMPLATE as JUDGE_TEMPLATE

            b_judge = _base_tokens(
                judge_prompts, JUDGE_TEMPLATE, trait="t", facet="", brief=brief, messages=history,
                rubric=[Criterion(criterion="a criterion", points=1)], question="q",
            )
            carried = brief_plain + (T * u + (T - n) * a + n_operator * s.operator.max_tokens) / n + rubric_tokens
            q = len(QUESTIONS)
            curation["judge"] = stage_estimate(n * q, n * q * (b_judge + carried), config.curation.judge_sampling)
        if config.curation.sign_checks:
            from ..grading.sign_check import SAMPLING as SIGN_SAMPLING
            from ..grading.sign_check import TEMPLATE as SIGN_TEMPLATE

            b_sign = _base_tokens(judge_prompts, SIGN_TEMPLATE, criterion="")
            curation["sign_checks"] = stage_estimate(criteria, criteria * (b_sign + s.rubric.max_tokens), SIGN_SAMPLING)

    cells = {f"{d} x {t}": c for (d, t), c in sorted(seeds.cell_counts().items())}
    pressure_ids = [p.id for p in taxonomy.pressures]
    by_pressure = np.bincount(cols["pressure"], minlength=len(pressure_ids))
    return RunPlan(
        run_id=run_id,
        folder=str(root),
        resumes=resumes,
        n=n,
        shards=math.ceil(n / config.shard_size),
        shard_size=config.shard_size,
        cells=cells,
        pressures={p: int(c) for p, c in zip(pressure_ids, by_pressure) if c},
        user_turns=T,
        plain=plain,
        structured=structured,
        capable=capable_stages(seeds, config.capable, config.shard_size, prompts, taxonomy),
        curation=curation,
    )


# -- generate --estimate N: a pilot run on the real backend, scaled to N ---------------------------

#: The figures a pilot measures per planned scenario and scales to the target.
PILOT_FIELDS = ("requests", "prompt_tokens", "completion_tokens", "server_s")


class PilotEstimate(BaseModel):
    """``generate --estimate N``: what a small pilot on the real backend cost, scaled to ``target``
    planned scenarios at the pilot's per-planned-scenario figures (so its kept rate is included:
    rejected scenarios cost requests too)."""

    model_config = ConfigDict(extra="forbid")

    target: int
    pilot_planned: int
    pilot_kept: int
    pilot_wall_s: float
    pilot_folder: str
    #: Per stage and ``total``: the pilot's own figures (``PILOT_FIELDS``).
    pilot: dict[str, dict[str, float]]
    #: Per stage and ``total``: the pilot's figures x ``target / pilot_planned``.
    predicted: dict[str, dict[str, float]]
    #: The backend's in-flight cap, when it has one (openai: ``--concurrency`` per server).
    concurrency: int | None = None

    @property
    def kept_rate(self) -> float:
        return self.pilot_kept / self.pilot_planned if self.pilot_planned else 0.0

    @property
    def predicted_kept(self) -> float:
        return self.target * self.kept_rate


def scale_pilot(usage: dict[str, dict[str, float | int]], planned: int, target: int) -> dict[str, dict[str, float]]:
    """Each stage's figures (and their ``total``) times ``target / planned``.

    >>> scale_pilot({"brief": {"requests": 8, "prompt_tokens": 100, "completion_tokens": 40, "server_s": 1.0}}, 4, 10)
    {'brief': {'requests': 20.0, 'prompt_tokens': 250.0, 'completion_tokens': 100.0, 'server_s': 2.5}, 'total': {'requests': 20.0, 'prompt_tokens': 250.0, 'completion_tokens': 100.0, 'server_s': 2.5}}
    """
    factor = target / planned
    rows = {stage: {f: float(u.get(f, 0)) * factor for f in PILOT_FIELDS} for stage, u in usage.items()}
    rows["total"] = {f: sum(r[f] for r in rows.values()) for f in PILOT_FIELDS}
    return rows


def pilot_estimate(config: GenerateConfig, target: int, pilot_n: int, folder: Path) -> PilotEstimate:
    """Run ``config`` at ``pilot_n`` scenarios (a fresh run id, everything written under ``folder``,
    which the caller removes) on the configured backend, and scale its cost to ``target``.

    The backend is the real one: an unreachable server fails here with its one-line error, before
    anything is written."""
    from ..backends.factory import get_backend
    from .run import run_generate_direct

    if target < 1 or pilot_n < 1:
        raise ConfigError(f"--estimate and --pilot-n must be at least 1 (got {target} and {pilot_n})")
    backend = get_backend(config.backend)  # unreachable server, wrong model or key: one line, nothing run
    pilot = config.model_copy(update={"n": pilot_n, "out": folder, "run_id": None})
    start = time.perf_counter()
    manifest = run_generate_direct(pilot)
    wall = time.perf_counter() - start
    planned = manifest.counts.planned
    own = scale_pilot(manifest.usage, planned, planned)
    return PilotEstimate(
        target=target, pilot_planned=planned, pilot_kept=manifest.counts.kept, pilot_wall_s=round(wall, 3),
        pilot_folder=str(folder), pilot=own, predicted=scale_pilot(manifest.usage, planned, target),
        concurrency=getattr(backend, "concurrency", None),
    )
