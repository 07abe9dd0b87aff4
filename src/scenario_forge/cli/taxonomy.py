"""``scenario-forge taxonomy validate|show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..taxonomy.graph import build_graph
from ..taxonomy.loader import load_taxonomy, taxonomy_hash
from ._common import guarded

app = typer.Typer(help="Check and inspect a taxonomy folder.", no_args_is_help=True)
TaxonomyOpt = Annotated[Optional[Path], typer.Option("--taxonomy", help="Taxonomy folder (default: the shipped one).")]


@app.command("validate")
@guarded
def validate(taxonomy: TaxonomyOpt = None) -> None:
    """Validate the taxonomy files; print one line, exit non-zero on any problem."""
    t = load_taxonomy(taxonomy)
    graph = build_graph(t)
    print(
        f"ok: {t.name} {t.version} (hash {taxonomy_hash(t)}): {len(t.domains)} domains, "
        f"{len(t.traits)} traits ({sum(tr.evaluated for tr in t.traits)} evaluated), "
        f"{len(t.pressures)} pressure tactics, {graph.number_of_edges()} weighted pairings"
    )


@app.command("show")
@guarded
def show(taxonomy: TaxonomyOpt = None) -> None:
    """Tables of the domains, traits and pressure tactics, with counts."""
    t = load_taxonomy(taxonomy)
    graph = build_graph(t)
    console = Console()

    domains = Table(title=f"{len(t.domains)} domains")
    domains.add_column("id", no_wrap=True)
    for col in ("name", "personas", "settings", "planted flaws", "aliases"):
        domains.add_column(col)
    for d in t.domains:
        domains.add_row(d.id, d.name, str(len(d.personas)), str(len(d.settings)), str(len(d.flaws)), ", ".join(d.aliases[:3]))
    console.print(domains)

    traits = Table(title=f"{len(t.traits)} traits")
    traits.add_column("id", no_wrap=True)
    for col in ("evaluated", "facets", "flawed-turn rate", "pressures (weight > default)", "aliases"):
        traits.add_column(col)
    for tr in t.traits:
        strong = [p.id for p in t.pressures if p.traits.get(tr.id, 0) > t.default_pairing_weight]
        traits.add_row(
            tr.id, "yes" if tr.evaluated else "", str(len(tr.facets)), f"{tr.flawed_turn_rate:.2f}",
            f"{len(strong)}: {', '.join(strong[:3])}{'...' if len(strong) > 3 else ''}", ", ".join(tr.aliases[:2]),
        )
    console.print(traits)

    pressures = Table(title=f"{len(t.pressures)} pressure tactics")
    pressures.add_column("id", no_wrap=True)
    for col in ("adversarial", "turns", "escalation steps", "traits listed", "shape", "operator"):
        pressures.add_column(col)
    for p in t.pressures:
        pressures.add_row(
            p.id, "yes" if p.adversarial else "", f"{p.turns.min}-{p.turns.max}", str(len(p.escalation)),
            str(len(p.traits)), p.shape, "yes" if p.operator_persona else "",
        )
    console.print(pressures)
    console.print(
        f"{t.name} {t.version}: {len(t.domains)} x {len(t.traits)} = {len(t.domains) * len(t.traits)} "
        f"domain x trait cells; {graph.number_of_edges()} weighted pairings in the graph"
    )
