"""The mixture's exact totals: ``B`` beneficial + ``S`` standard = ``T`` rows with ``B / T == p / q``.

The plan stage checks an explicit ``total_rows`` early (:func:`exact_total`, :func:`short_message`);
the select stage and ``mix --estimate`` choose the totals with :func:`choose_totals`.
"""

from __future__ import annotations

from collections import Counter

from ..errors import ConfigError
from ..records import Reject


def exact_total(total: int, p: int, q: int) -> None:
    """Refuse a total that does not split exactly at ratio ``p/q``.

    >>> exact_total(40, 1, 20)
    >>> exact_total(50, 1, 20)
    Traceback (most recent call last):
    ...
    scenario_forge.errors.ConfigError: total_rows 50 does not split exactly at ratio 1/20: use a multiple of 20 (e.g. 40 or 60)
    """
    if total % q:
        lower, upper = total // q * q, (total // q + 1) * q
        raise ConfigError(
            f"total_rows {total} does not split exactly at ratio {p}/{q}: use a multiple of {q} "
            f"(e.g. {lower or upper} or {upper})"
        )


def short_message(name: str, want: int, total: int, p: int, q: int, have: int, counts: str) -> str:
    """The refusal when a recipe asks for more beneficial rows than there are eligible scenarios."""
    return (
        f"recipe {name} asks for {want} beneficial rows (total {total} x {p}/{q}) but only {have} scenarios "
        f"are eligible ({counts}); generate more, lower the total, or pass --allow-smaller"
    )


def plan_counts(loaded: int, heldout: dict[str, list[str]], dropped: list[Reject]) -> str:
    """Where the loaded scenarios went so far, in one clause (for the refusals above)."""
    reasons = Counter(r.reason for r in dropped)
    parts = [f"{loaded} loaded"]
    held = sum(len(v) for v in heldout.values())
    if held:
        parts.append(f"{held} held out")
    parts += [f"{n} {reason.replace('_', ' ')}" for reason, n in sorted(reasons.items())]
    return ", ".join(parts)


def choose_totals(
    p: int, q: int, available: int, total_rows: int | None, base_rows: int | None, allow_smaller: bool,
    standard_only: bool, name: str = "recipe", counts: str = "",
) -> tuple[int, int, int]:
    """``(B, S, T)`` with ``B / T == p / q`` exactly: B beneficial, S = T - B standard rows.

    Without ``total_rows`` B is the largest multiple of ``p`` not above the rows available; with it
    B = total * p / q (the total must be a multiple of ``q``). ``standard_only`` arms need T standard rows.

    >>> choose_totals(1, 20, 37, None, None, False, False)
    (37, 703, 740)
    >>> choose_totals(3, 10, 37, None, None, False, False)
    (36, 84, 120)
    >>> choose_totals(1, 20, 37, None, 100, True, False)   # base has 100 rows: S <= 100
    (5, 95, 100)
    """
    if total_rows is not None:
        exact_total(total_rows, p, q)
        b = total_rows * p // q
        if b > available:
            if not allow_smaller:
                raise ConfigError(short_message(name, b, total_rows, p, q, available, counts or f"{available} eligible"))
            b = available // p * p
    else:
        b = available // p * p

    def need(b: int) -> int:
        return b * q // p if standard_only else b * (q - p) // p

    if base_rows is not None and need(b) > base_rows:
        if not allow_smaller:
            raise ConfigError(
                f"the base set has {base_rows} rows but recipe {name} needs {need(b)} standard rows "
                f"({b} beneficial at {p}/{q}); use a larger base set or --allow-smaller"
            )
        b = (base_rows // q if standard_only else base_rows // (q - p)) * p
        b = min(b, available // p * p)
    if b <= 0:
        raise ConfigError(
            f"recipe {name} has no beneficial rows to mix: {available} eligible after the checks"
            f"{' (' + counts + ')' if counts else ''}, and ratio {p}/{q} needs a multiple of {p}"
        )
    t = b * q // p
    return b, t - b, t
