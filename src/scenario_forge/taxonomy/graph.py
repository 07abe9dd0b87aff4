"""The taxonomy as a weighted graph: which domains, traits and pressure tactics pair, and how often.

Nodes are ``("domain", id)``, ``("trait", id)`` and ``("pressure", id)``, each with a ``kind``
attribute. Edges:

- domain - trait, weight 1: every domain is joined to every trait (the coverage cells);
- trait - pressure: the pressure's ``traits:`` weight for the trait, or the taxonomy's
  ``default_pairing_weight`` when it does not list the trait;
- domain - pressure: the pressure's ``domains:`` weight for the domain under the strict rule
  (:meth:`Taxonomy.domain_weight`): a pressure with no ``domains:`` map fits every domain
  (weight 1), one with a map fits only the domains it lists.

A weight-0 pairing gets no edge, so it is never planned. The planner draws a seed's pressure in
the cell (domain, trait) with probability proportional to the product of the two edges' weights
(:func:`cell_pressure_choices`); a pressure missing either edge is out of the cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from .models import Taxonomy


def build_graph(taxonomy: Taxonomy) -> nx.Graph:
    """The taxonomy's weighted graph (see the module docstring for its nodes and edges)."""
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
    for p in taxonomy.pressures:
        for t in taxonomy.traits:
            w = taxonomy.pairing_weight(t.id, p)
            if w > 0:
                graph.add_edge(("trait", t.id), ("pressure", p.id), weight=float(w))
        for d in taxonomy.domains:
            w = taxonomy.domain_weight(d.id, p)
            if w > 0:
                graph.add_edge(("domain", d.id), ("pressure", p.id), weight=float(w))
    return graph


@dataclass(frozen=True)
class PressureChoice:
    """The pressures a trait (or a cell) can pair with and their normalized sampling probabilities."""

    ids: tuple[str, ...]
    probs: np.ndarray


def _pressure_weights(graph: nx.Graph, node: tuple[str, str]) -> dict[str, float]:
    if node not in graph:
        raise ValueError(f"the taxonomy graph has no {node[0]} {node[1]!r}")
    return {nbr[1]: float(data["weight"]) for nbr, data in graph[node].items() if nbr[0] == "pressure" and data["weight"] > 0}


def pressure_choices(graph: nx.Graph, trait_id: str) -> PressureChoice:
    """The pressures joined to a trait, with probabilities from the trait-pressure weights alone."""
    pairs = sorted(_pressure_weights(graph, ("trait", trait_id)).items())
    if not pairs:
        raise ValueError(f"trait {trait_id!r} pairs with no pressure tactic")
    weights = np.array([w for _, w in pairs], dtype=np.float64)
    return PressureChoice(ids=tuple(i for i, _ in pairs), probs=weights / weights.sum())


def cell_weights(graph: nx.Graph, domain_id: str, trait_id: str) -> dict[str, float]:
    """The pressures of the cell (domain, trait): the product of each pressure's domain and trait
    edge weights, for the pressures joined to both (sorted by id; empty when none is)."""
    by_trait = _pressure_weights(graph, ("trait", trait_id))
    by_domain = _pressure_weights(graph, ("domain", domain_id))
    return {p: by_trait[p] * by_domain[p] for p in sorted(by_trait.keys() & by_domain.keys())}


def cell_pressure_choices(graph: nx.Graph, domain_id: str, trait_id: str) -> PressureChoice:
    """The pressures a cell can draw and their probabilities (product of the two edge weights).

    Raises ``ValueError`` naming the cell when no pressure is joined to both its domain and trait.
    """
    weights = cell_weights(graph, domain_id, trait_id)
    if not weights:
        raise ValueError(f"cell ({domain_id}, {trait_id}) has no compatible pressure tactic")
    w = np.array(list(weights.values()), dtype=np.float64)
    return PressureChoice(ids=tuple(weights), probs=w / w.sum())


def empty_cells(graph: nx.Graph, domain_ids: list[str], trait_ids: list[str]) -> list[tuple[str, str]]:
    """The (domain, trait) cells with no compatible pressure tactic."""
    return [(d, t) for d in domain_ids for t in trait_ids if not cell_weights(graph, d, t)]


def graph_figures(graph: nx.Graph) -> dict[str, dict[str, int]]:
    """Nodes per kind and edges per kind pair (``"domain-pressure"``, ...), for ``taxonomy show``."""
    nodes: dict[str, int] = {}
    for _, data in graph.nodes(data=True):
        nodes[data["kind"]] = nodes.get(data["kind"], 0) + 1
    edges: dict[str, int] = {}
    for a, b in graph.edges():
        key = "-".join(sorted((a[0], b[0]), key=("domain", "trait", "pressure").index))
        edges[key] = edges.get(key, 0) + 1
    return {"nodes": nodes, "edges": edges}
