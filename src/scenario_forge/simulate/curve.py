"""Throughput curves: a server's total output tokens/s as a function of the sequences in flight.

A curve file is JSON: ``{"name", "model", "source", "points": [[sequences, tokens_per_s], ...]}``
with sequences strictly increasing from 1 and rates positive. Between points the rate is
interpolated linearly; past the last point it stays at the last rate.

>>> c = ThroughputCurve(name="t", model="m", source="doc", points=[(1, 100.0), (4, 300.0)])
>>> c.rate(1), c.rate(2), c.rate(4), c.rate(10)
(100.0, 166.66666666666669, 300.0, 300.0)
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ForgeError

#: Curves shipped with the package, by name (``--curve NAME`` or a path to a JSON file).
CURVES_DIR = Path(__file__).parent / "curves"


class CurveError(ForgeError):
    """A curve file that cannot be used (missing, not JSON, or invalid)."""


class ThroughputCurve(BaseModel):
    """Total output tokens/s of one server against sequences in flight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    model: str = Field(min_length=1, description="the model the curve describes")
    source: str = Field(min_length=1, description="where the numbers come from (a measurement or a model)")
    points: list[tuple[int, float]] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_points(self) -> ThroughputCurve:
        if self.points[0][0] != 1:
            raise ValueError("points must start at 1 sequence in flight")
        for (a, _), (b, _) in pairwise(self.points):
            if b <= a:
                raise ValueError(f"sequences in flight must increase strictly ({a} then {b})")
        for n, r in self.points:
            if not r > 0 or r == float("inf"):
                raise ValueError(f"the rate at {n} sequences must be a positive number, not {r}")
        return self

    def rate(self, n: int) -> float:
        """Total output tokens/s with ``n`` (>= 1) sequences in flight."""
        pts = self.points
        if n <= pts[0][0]:
            return pts[0][1]
        for (a, ra), (b, rb) in pairwise(pts):
            if n <= b:
                return ra + (rb - ra) * (n - a) / (b - a)
        return pts[-1][1]


def shipped_curves() -> list[str]:
    """Names of the curves in :data:`CURVES_DIR`."""
    return sorted(p.stem for p in CURVES_DIR.glob("*.json"))


def load_curve(spec: str | Path) -> ThroughputCurve:
    """A shipped curve by name, or a curve file by path; :class:`CurveError` with one line if unusable."""
    path = Path(spec)
    if not path.suffix and (CURVES_DIR / f"{spec}.json").is_file():
        path = CURVES_DIR / f"{spec}.json"
    if not path.is_file():
        raise CurveError(f"curve file not found: {spec} (shipped curves: {', '.join(shipped_curves())})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CurveError(f"{path}: not a JSON curve file ({' '.join(str(exc).split())})") from None
    try:
        return ThroughputCurve.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise CurveError(f"{path}: invalid curve at {where}: {first['msg']}") from None
