"""Recipes: the built-in arms load and resolve; bad recipes and personas fail with one line; totals
are chosen so that beneficial / total equals the ratio exactly."""

from __future__ import annotations

import doctest
from fractions import Fraction
from pathlib import Path

import pytest

from scenario_forge.errors import ConfigError
from scenario_forge.mixing import recipes as recipes_mod
from scenario_forge.mixing import totals as totals_mod
from scenario_forge.mixing.personas import load_persona
from scenario_forge.mixing.recipes import builtin_recipes, load_recipe, ratio_fraction, resolve_recipe
from scenario_forge.mixing.totals import choose_totals

ARMS = {"paper-5pct", "baseline", "health-only", "no-health-science", "generic-reward", "traits-heldout"}


def test_doctests():
    for module in (recipes_mod, totals_mod):
        assert doctest.testmod(module).failed == 0


def test_builtin_arms_load_and_resolve(taxonomy):
    assert ARMS <= set(builtin_recipes())
    resolved = {}
    for name in ARMS:
        recipe, path = load_recipe(name)
        assert recipe.name == name and path.name == f"{name}.yaml"
        resolved[name] = resolve_recipe(recipe, taxonomy)
        if recipe.persistence:
            for variant in ("harmful", "helpful"):
                persona, _ = load_persona(getattr(recipe.persistence, variant), variant)
                assert persona.variant == variant
    all_domains = {d.id for d in taxonomy.domains}
    assert set(resolved["paper-5pct"].beneficial_domains) == all_domains
    assert set(resolved["health-only"].beneficial_domains) == {"health"}
    assert set(resolved["health-only"].heldout_domains) == all_domains - {"health"}
    assert set(resolved["no-health-science"].beneficial_domains) == all_domains - {"health", "science"}
    assert set(resolved["no-health-science"].heldout_domains) == {"health", "science"}
    evaluated = {t.id for t in taxonomy.traits if t.evaluated}
    training_only = {t.id for t in taxonomy.traits if not t.evaluated}
    assert len(evaluated) == 7 and len(training_only) == 8
    assert {m.trait for m in resolved["traits-heldout"].beneficial_traits} == training_only
    assert {m.trait for m in resolved["traits-heldout"].heldout_traits} == evaluated
    base, generic, baseline = (load_recipe(n)[0] for n in ("paper-5pct", "generic-reward", "baseline"))
    assert generic.reward_type == "generic_judge" and base.reward_type == "rubric"
    # generic-reward and baseline differ from paper-5pct only where they must (same rows, same held-out)
    same = {"heldout", "beneficial", "beneficial_ratio", "total_rows", "seed", "persistence"}
    assert {k: getattr(generic, k) for k in same} == {k: getattr(base, k) for k in same}
    assert baseline.standard_only and {k: getattr(baseline, k) for k in same} == {k: getattr(base, k) for k in same}


def test_aliases_and_facets_resolve(taxonomy, tmp_path: Path):
    path = tmp_path / "r.yaml"
    path.write_text("name: t\nbeneficial_ratio: 0.1\nbeneficial: {domains: [medicine], traits: [risk sensitivity]}\n"
                    "heldout: {traits: [epistemic_humility]}\n")
    resolved = resolve_recipe(load_recipe(str(path))[0], taxonomy)
    assert resolved.beneficial_domains == ["health"]
    assert [m.trait for m in resolved.beneficial_traits] == ["downside_aware_planning"]
    assert resolved.heldout_trait("truthfulness", "epistemic_humility")
    assert not resolved.heldout_trait("truthfulness", None)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("name: x\nbeneficial_ratio: 0\n", "beneficial_ratio: Input should be greater than 0"),
        ("name: x\nbeneficial_ratio: 1\n", "beneficial_ratio: Input should be less than 1"),
        ("name: x\nbeneficial_ratio: 1.5\n", "beneficial_ratio: Input should be less than 1"),
        ("name: x\nbeneficial_ratio: 0.05\nbenefical: {}\n", "benefical: Extra inputs are not permitted"),
        ("name: x\nbeneficial_ratio: 0.05\nheldout: {fraction: 1.0}\n", "heldout.fraction"),
        ("name: x\nbeneficial_ratio: [\n", "malformed YAML"),
        ("", "is empty"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_bad_recipe_files(tmp_path: Path, body, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_recipe(str(path))
    assert needle in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("beneficial: {domains: [astrology]}", "unknown domain 'astrology'"),
        ("beneficial: {exclude_traits: [telepathy]}", "unknown trait 'telepathy'"),
        ("heldout: {domains: [atlantis]}", "heldout.domains: unknown domain 'atlantis'"),
        ("heldout: {traits: ['@bogus']}", "unknown trait selector '@bogus'"),
        ("beneficial: {exclude_domains: ['@all']}", "the beneficial selection is empty"),
    ],
)
def test_recipe_names_checked_against_taxonomy(taxonomy, tmp_path: Path, extra, needle):
    path = tmp_path / "r.yaml"
    path.write_text(f"name: r\nbeneficial_ratio: 0.05\n{extra}\n")
    with pytest.raises(ConfigError) as err:
        resolve_recipe(load_recipe(str(path))[0], taxonomy)
    assert needle in str(err.value)


def test_unknown_recipe_name_lists_builtins():
    with pytest.raises(ConfigError) as err:
        load_recipe("paper-6pct")
    assert "unknown recipe 'paper-6pct'" in str(err.value) and "paper-5pct" in str(err.value)
    with pytest.raises(ConfigError, match="recipe file not found"):
        load_recipe("missing/recipe.yaml")


def test_bad_persona_files(tmp_path: Path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("   \n")
    with pytest.raises(ConfigError, match="persona file .*empty.yaml is empty"):
        load_persona(str(empty), "harmful")
    with pytest.raises(ConfigError, match="is 'helpful' but is used as the harmful persona"):
        load_persona("good-medical", "harmful")
    with pytest.raises(ConfigError, match="unknown persona 'evil-twin'"):
        load_persona("evil-twin", "harmful")
    short = tmp_path / "short.yaml"
    short.write_text("id: s\nvariant: harmful\nname: s\nsystem_prompt: be bad\n")
    with pytest.raises(ConfigError, match="system_prompt"):
        load_persona(str(short), "harmful")


@pytest.mark.parametrize("ratio", [0.05, 0.01, 0.3, 1 / 3, 0.0002, 0.125, 0.9])
@pytest.mark.parametrize("available", [1, 7, 37, 100, 999])
def test_totals_hold_the_ratio_exactly(ratio, available):
    frac = ratio_fraction(ratio)
    p, q = frac.numerator, frac.denominator
    if available < p:
        with pytest.raises(ConfigError, match="no beneficial rows"):
            choose_totals(p, q, available, None, None, False, False)
        return
    b, s, t = choose_totals(p, q, available, None, None, False, False)
    assert Fraction(b, t) == frac and b + s == t and b <= available and available - b < p
    if t % q == 0 and t // q * p <= available:
        b2, s2, t2 = choose_totals(p, q, available, t, None, False, False)
        assert (b2, s2, t2) == (b, s, t)


def test_total_rows_errors_and_allow_smaller():
    with pytest.raises(ConfigError, match="does not split exactly at ratio 1/20: use a multiple of 20 \\(e.g. 1000 or 1020\\)"):
        choose_totals(1, 20, 100, 1001, None, False, False)
    with pytest.raises(ConfigError) as err:
        choose_totals(1, 20, 30, 2000, None, False, False, name="paper-5pct", counts="40 loaded, 10 held out")
    assert "asks for 100 beneficial rows (total 2000 x 1/20) but only 30 scenarios are eligible (40 loaded, 10 held out)" in str(err.value)
    assert choose_totals(1, 20, 30, 2000, None, True, False) == (30, 570, 600)
    with pytest.raises(ConfigError, match="the base set has 100 rows but recipe r needs 570 standard rows"):
        choose_totals(1, 20, 30, None, 100, False, False, name="r")
    assert choose_totals(1, 20, 30, None, 100, True, False) == (5, 95, 100)
    assert choose_totals(1, 20, 30, None, 100, True, True) == (5, 95, 100)  # standard-only needs T = 100 rows
