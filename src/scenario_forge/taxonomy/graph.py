"""The taxonomy as a weighted graph: which domains, traits and pressure tactics pair, and how often.

Nodes are ``("domain", id)``, ``("trait", id)`` and ``("pressure", id)``. Every domain is joined to
every trait (weight 1). A trait is joined to a pressure with the pressure's weight for it, or the
taxonomy's ``default_pairing_weight``; weight-0 pairings get no edge, so they are never planned.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from .models import Taxonomy


def build_graph(taxonomy: Taxonomy) -> nx.Graph:
    graph = nx.Graph(name=taxonomy.name, version=taxonomy.version)
    for d in taxonomy.domains:
        graph.add_node(("domain", d.id), kind="domain", label=d.name)
    for t in taxonomy.traits:
        graph.add_node(("trait", t.id), kind="trait", label=t.name, evaluated=t.evaluated)
    for p in taxonomy.pressures:
        graph.add_node(("pressure", p.id), kind="pressure", label=p.name, adversarial=p.adversarial)
    for d in taxonomy.domains:
        for t in taxonomy.traits:
            graph.add_edge(("domain", d.id), ("trait", t.id), weight=1.0)
    for t in taxonomy.traits:
        for p in taxonomy.pressures:
            w = taxonomy.pairing_weight(t.id, p)
            if w > 0:
                graph.add_edge(("trait", t.id), ("pressure", p.id), weight=float(w))
    return graph


@dataclass(frozen=True)
class PressureChoice:
    """The pressures a trait can pair with and their normalized sampling probabilities."""

    ids: tuple[str, ...]
    probs: np.ndarray


def pressure_choices(graph: nx.Graph, trait_id: str) -> PressureChoice:
    node = ("trait", trait_id)
    pairs = sorted(
        (nbr[1], data["weight"])
        for nbr, data in graph[node].items()
        if nbr[0] == "pressure" and data["weight"] > 0
    )
    if not pairs:
        raise ValueError(f"trait {trait_id!r} pairs with no pressure tactic")
    weights = np.array([w for _, w in pairs], dtype=np.float64)
    return PressureChoice(ids=tuple(i for i, _ in pairs), probs=weights / weights.sum())
