"""``scenario-forge taxonomy validate|show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import networkx as nx
import typer
from rich.console import Console
from rich.table import Table

from ..taxonomy.graph import build_graph, cell_weights, empty_cells, graph_figures
from ..taxonomy.loader import load_taxonomy, taxonomy_hash
from ..taxonomy.models import Taxonomy
from ._common import fail, guarded

app = typer.Typer(help="Check and inspect a taxonomy folder.", no_args_is_help=True)
TaxonomyOpt = Annotated[Optional[Path], typer.Option("--taxonomy", help="Taxonomy folder (default: the shipped one).")]


def problems(t: Taxonomy, graph: nx.Graph) -> list[str]:
    """The (domain, trait) cells the graph leaves with no compatible pressure tactic.

    A domain without personas or flaws, a flaw naming an unknown persona, a plain-string flaw and
    a pressure naming an unknown domain or trait already fail loading, with the file and entry."""
    cells = empty_cells(graph, [d.id for d in t.domains], [x.id for x in t.traits])
    return [f"cell ({d}, {tr}) has no compatible pressure tactic" for d, tr in cells]


@app.command("validate")
@guarded
def validate(taxonomy: TaxonomyOpt = None) -> None:
    """Validate the taxonomy files and its graph; print one line, exit non-zero on any problem."""
    t = load_taxonomy(taxonomy)
    graph = build_graph(t)
    found = problems(t, graph)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        fail(f"taxonomy {t.name}: {found[0]}{more}", 1)
    figures = graph_figures(graph)["edges"]
    print(
        f"ok: {t.name} {t.version} (hash {taxonomy_hash(t)}): {len(t.domains)} domains, "
        f"{len(t.traits)} traits ({sum(tr.evaluated for tr in t.traits)} evaluated), "
        f"{len(t.pressures)} pressure tactics, {sum(len(d.flaws) for d in t.domains)} catalogued flaws, "
        f"{figures.get('trait-pressure', 0)} trait-pressure and {figures.get('domain-pressure', 0)} domain-pressure pairings"
    )


#: ``taxonomy show`` lists cells with at most this many compatible pressures.
FEW_PRESSURES = 3


@app.command("show")
@guarded
def show(taxonomy: TaxonomyOpt = None) -> None:
    """Tables of the domains, traits and pressure tactics, and the graph's figures."""
    t = load_taxonomy(taxonomy)
    graph = build_graph(t)
    console = Console()

    domains = Table(title=f"{len(t.domains)} domains")
    domains.add_column("id", no_wrap=True)
    for col in ("name", "personas", "settings", "flaws", "flaw kinds", "aliases"):
        domains.add_column(col)
    for d in t.domains:
        kinds = sorted({f.kind for f in d.flaws})
        domains.add_row(
            d.id, d.name, str(len(d.personas)), str(len(d.settings)), str(len(d.flaws)), ", ".join(kinds),
            ", ".join(d.aliases[:3]),
        )
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
    for col in ("adversarial", "turns", "escalation steps", "traits listed", "domains", "shape", "operator"):
        pressures.add_column(col)
    for p in t.pressures:
        pressures.add_row(
            p.id, "yes" if p.adversarial else "", f"{p.turns.min}-{p.turns.max}", str(len(p.escalation)),
            str(len(p.traits)), f"{len(p.domains)} listed" if p.domains else "all (no map)", p.shape,
            "yes" if p.operator_persona else "",
        )
    console.print(pressures)

    weights = Table(title="domain-pressure weights (graph edges; - = forbidden)")
    weights.add_column("domain", no_wrap=True)
    for p in t.pressures:
        weights.add_column(p.id[:10])
    for d in t.domains:
        row = [graph.get_edge_data(("domain", d.id), ("pressure", p.id)) for p in t.pressures]
        weights.add_row(d.id, *[f"{e['weight']:g}" if e else "-" for e in row])
    console.print(weights)

    figures = graph_figures(graph)
    sizes = {(d.id, tr.id): len(cell_weights(graph, d.id, tr.id)) for d in t.domains for tr in t.traits}
    few = sorted((n, cell) for cell, n in sizes.items() if n <= FEW_PRESSURES)
    console.print(
        f"{t.name} {t.version}: {len(t.domains)} x {len(t.traits)} = {len(sizes)} domain x trait cells; graph: "
        + ", ".join(f"{n} {k} nodes" for k, n in figures["nodes"].items()) + "; "
        + ", ".join(f"{n} {k} edges" for k, n in figures["edges"].items())
    )
    console.print(
        f"pressures per cell: min {min(sizes.values())}, max {max(sizes.values())}; "
        f"{len(few)} cells with <= {FEW_PRESSURES}"
        + (": " + ", ".join(f"({d}, {tr}) {n}" for n, (d, tr) in few[:10]) + ("..." if len(few) > 10 else "") if few else "")
    )
