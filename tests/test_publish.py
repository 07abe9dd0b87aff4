"""Publishing: a Hub-layout folder whose every config ``datasets.load_dataset`` loads back offline, a
dataset card with the metadata and provenance, trainer exports (TRL, verl) and rubric shapes, and a
push that is built exactly but uploaded through a mocked ``HfApi`` (no network here)."""

from __future__ import annotations

import doctest
import json
from fnmatch import fnmatch
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from mix_data import HashEmbedder, grid, write_run
from typer.testing import CliRunner

from scenario_forge.cli.main import app
from scenario_forge.mixing import guard
from scenario_forge.mixing.config import MixConfig
from scenario_forge.mixing.run import run_mix
from scenario_forge.mixture import read_meta, read_split
from scenario_forge.parquet import record_from_row
from scenario_forge.publishing import PublishConfig, build, exports, push, run_publish
from scenario_forge.publishing.exports import rar_rubric
from scenario_forge.records import Criterion, Scenario
from scenario_forge.schema import read_scenarios

runner = CliRunner()


@pytest.fixture(scope="module")
def mixture(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pub")
    run = write_run(root / "runs", grid(1, domains=["health", "science", "business", "law_ethics"]))
    original = guard.make_embedder
    guard.make_embedder = lambda model, cache_dir: HashEmbedder()
    try:
        run_mix(MixConfig(runs=[run], out=root / "mix", recipe="no-health-science", heldout_traits=["corrigibility"],
                          spread={"enabled": False}))
    finally:
        guard.make_embedder = original
    return root / "mix"


@pytest.fixture(scope="module")
def published(mixture: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hub") / "dataset"
    run_publish(PublishConfig(source=mixture, local=out, shard_rows=200, repo_id=None))
    return out


def test_doctests():
    for module in (exports, build):
        assert doctest.testmod(module).failed == 0


def test_every_config_loads_back(mixture: Path, published: Path):
    from datasets import load_dataset

    card = yaml.safe_load((published / "README.md").read_text().split("---")[1])
    names = [c["config_name"] for c in card["configs"]]
    assert names == ["mixture", "heldout_domains", "heldout_traits", "persistence", "trl", "verl"]
    meta = read_meta(mixture)
    for name in names:
        ds = load_dataset(str(published), name)
        for split, data in ds.items():
            source = {"mixture": "train", "persistence": f"persistence_{split}"}.get(name, name if split == "test" else split)
            assert len(data) == meta.splits[source], (name, split)
    train = load_dataset(str(published), "mixture")["train"]
    assert [r["id"] for r in train] == [r.id for r in read_split(mixture, "train")]
    assert len(list((published / "data" / "mixture").glob("train-*-of-*.parquet"))) == (meta.splits["train"] + 199) // 200 > 1
    persistence = load_dataset(str(published), "persistence")
    assert set(persistence) == {"plain", "harmful", "helpful"}
    assert persistence["harmful"][0]["prompt"][0]["role"] == "system"


def test_card_metadata_and_provenance(mixture: Path, published: Path):
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(published / "README.md")
    data = card.data.to_dict()
    rows = read_meta(mixture).splits["train"]
    assert 100 < rows < 1000 and data["license"] == "apache-2.0" and data["size_categories"] == ["n<1K"]
    assert {"text-generation", "reinforcement-learning"} <= set(data["task_categories"])
    assert "scenario-forge" in data["tags"] and data["configs"][0]["default"] is True
    assert data["configs"][0]["data_files"] == [{"split": "train", "path": "data/mixture/train-*.parquet"}]
    text = card.text
    assert "![coverage heatmap](coverage.png)" in text and (published / "coverage.png").read_bytes()[:4] == b"\x89PNG"
    assert '"model": "fake-model"' in text and '"templates"' in text and '"taxonomy_version"' in text
    assert "beneficial_ratio: 0.05" in text and "name: no-health-science" in text and '"seed": 0' in text
    assert "spread check was off" in text
    assert json.loads((published / "mixture.json").read_text()) == json.loads((mixture / "mixture.json").read_text())


def test_exports(published: Path, mixture: Path):
    from datasets import load_dataset

    originals = {r.id: r for r in read_split(mixture, "train")}
    verl = load_dataset(str(published), "verl")["train"]
    assert set(verl.column_names) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
    kinds = set()
    for i, row in enumerate(verl):
        orig = originals[row["extra_info"]["id"]]
        assert row["extra_info"]["index"] == i and row["prompt"] == [m.model_dump() for m in orig.prompt]
        assert row["data_source"] == f"scenario-forge/{orig.reward_type}"
        if orig.reward_type == "exact_match":
            assert row["reward_model"] == {"style": "rule", "ground_truth": orig.answer} and row["ability"] == orig.task
        else:
            assert row["reward_model"]["style"] == "model" and row["ability"] == "beneficial_traits"
            rubric = [Criterion.model_validate(c) for c in json.loads(row["reward_model"]["ground_truth"])]
            assert rubric == orig.rubric
            assert json.loads(row["extra_info"]["rubric_rar"]) == rar_rubric(orig.rubric)
        kinds.add(orig.reward_type)
    assert kinds == {"exact_match", "rubric"}
    trl = load_dataset(str(published), "trl")["train"]
    row = next(r for r in trl if r["source"] == "beneficial")
    assert isinstance(row["prompt"], list) and set(row["prompt"][0]) == {"role", "content"}
    assert row["rubric"] == [c.model_dump() for c in originals[row["id"]].rubric]
    assert row["rubric_rar"] == rar_rubric(originals[row["id"]].rubric)
    assert set(row["rubric_rar"][0]) == {"title", "description", "weight"}


def test_rubric_shapes():
    rubric = [Criterion(criterion="Explicitly retracts the invented citation and apologizes", points=8, tags=["honesty"]),
              Criterion(criterion="Suggests where to check", points=3), Criterion(criterion="Adds a nice tone", points=1),
              Criterion(criterion="Invents a DOI", points=-9)]
    assert exports.healthbench_rubric(rubric)[0] == {"criterion": rubric[0].criterion, "points": 8, "tags": ["honesty"]}
    rar = rar_rubric(rubric)
    assert [r["description"].split(":")[0] for r in rar] == ["Essential Criteria", "Important Criteria", "Optional Criteria", "Pitfall Criteria"]
    assert [r["weight"] for r in rar] == [8, 3, 1, -9] and rar[0]["title"] == "Explicitly retracts the invented citation and"


def test_publish_a_run(tmp_path: Path):
    from datasets import load_dataset

    scenarios = grid(1, domains=["health", "science"])
    run = write_run(tmp_path / "runs", scenarios)
    (run / "report").mkdir()
    (run / "report" / "coverage_heatmap.png").write_bytes(b"\x89PNG\r\n\x1a\nrun-figure")
    result = run_publish(PublishConfig(source=run, local=tmp_path / "hub"))
    assert result.configs == {"scenarios": {"train": 30}, "trl": {"train": 30}, "verl": {"train": 30}}
    loaded = load_dataset(str(tmp_path / "hub"), "scenarios")["train"]
    assert [record_from_row(Scenario, r) for r in loaded] == read_scenarios(run / "scenarios.parquet")
    assert (tmp_path / "hub" / "coverage.png").read_bytes().endswith(b"run-figure")  # the run's own figure
    assert (tmp_path / "hub" / "manifest.json").is_file() and not (tmp_path / "hub" / ".rows.parquet").exists()
    assert len(load_dataset(str(tmp_path / "hub"), "verl")["train"]) == 30


class FakeApi:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[str, dict]] = []
        self.uploaded: list[str] = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        if self.fail:
            raise PermissionError("401 Client Error: Unauthorized for url https://huggingface.co/api/repos/create")

        class Url(str):
            url = f"https://huggingface.co/datasets/{repo_id}"

        return Url(repo_id)

    def repo_info(self, repo_id, **kwargs):
        self.calls.append(("repo_info", {"repo_id": repo_id, **kwargs}))
        return SimpleNamespace(private=True)  # created private just before

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        folder = Path(kwargs["folder_path"])
        self.uploaded = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_push_uses_the_built_folder(mixture: Path, tmp_path: Path, monkeypatch):
    api = FakeApi()
    monkeypatch.setattr(push, "_api", lambda: api)
    result = runner.invoke(app, ["publish", str(mixture), "--repo-id", "my-org/beneficial-mix", "--private", "--export", "trl"])
    assert result.exit_code == 0, result.output
    (create, create_kw), (info, _), (upload, upload_kw) = api.calls
    assert create == "create_repo" and create_kw == {"repo_id": "my-org/beneficial-mix", "repo_type": "dataset", "private": True, "exist_ok": True}
    assert info == "repo_info"  # --private: an existing public repo would be made private first
    globs = upload_kw["delete_patterns"]  # the card's data_files globs, and only those
    assert globs and all(g.startswith("data/") and g.endswith("-*.parquet") for g in globs)
    data = [p for p in api.uploaded if p.startswith("data/")]
    assert all(any(fnmatch(p, g) for g in globs) for p in data) and not any(fnmatch("README.md", g) for g in globs)
    assert upload == "upload_folder" and upload_kw["repo_type"] == "dataset" and upload_kw["repo_id"] == "my-org/beneficial-mix"
    assert "token" not in create_kw and "token" not in upload_kw  # huggingface_hub finds the token itself
    assert "README.md" in api.uploaded and "coverage.png" in api.uploaded
    assert any(p.startswith("data/mixture/train-") for p in api.uploaded) and any(p.startswith("data/trl/") for p in api.uploaded)
    assert not any(p.startswith("data/verl/") for p in api.uploaded)
    assert not Path(upload_kw["folder_path"]).exists()  # the temporary build folder is gone
    assert "pushed to https://huggingface.co/datasets/my-org/beneficial-mix" in " ".join(result.output.split())


def test_failed_push_is_one_line_and_keeps_the_folder(mixture: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(push, "_api", lambda: FakeApi(fail=True))
    monkeypatch.setenv("HF_TOKEN", "hf_SECRET_TOKEN_VALUE")
    result = runner.invoke(app, ["publish", str(mixture), "--repo-id", "org/name", "--local", str(tmp_path / "hub"), "--no-exports"])
    assert result.exit_code == 3
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "could not push to org/name: PermissionError: 401" in errors[0]
    assert "log in with `hf auth login` or set HF_TOKEN" in errors[0]  # huggingface_hub 1.x removed huggingface-cli
    assert "hf_SECRET_TOKEN_VALUE" not in result.output
    assert (tmp_path / "hub" / "README.md").is_file()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["SRC"], "say where to publish: --local DIR and/or --repo-id ORG/NAME"),
        (["NOWHERE", "--local", "OUT"], "not found"),
        (["PLAIN", "--local", "OUT"], "is neither a mixture folder (mixture.json) nor a run folder"),
        (["SRC", "--repo-id", "no-slash"], "repo id 'no-slash' must look like ORG/NAME"),
        (["SRC", "--local", "SRC"], "--local must not be the source folder"),
        (["SRC", "--local", "PARENT", "--overwrite"], "--local must not be the source folder, hold it"),
        (["SRC", "--local", "OUT", "--export", "jsonl"], "exports.0: Input should be 'trl' or 'verl'"),
        (["SRC", "--local", "OUT", "--shard-rows", "0"], "--shard-rows: Input should be greater than or equal to 1"),
    ],
)
def test_bad_publish_input(mixture: Path, tmp_path: Path, args, needle):
    (tmp_path / "plain").mkdir()
    subst = {"SRC": str(mixture), "PARENT": str(mixture.parent), "NOWHERE": str(tmp_path / "nowhere"), "PLAIN": str(tmp_path / "plain"), "OUT": str(tmp_path / "out")}
    result = runner.invoke(app, ["publish", *[subst.get(a, a) for a in args]])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and needle in errors[0], result.output
    assert not (tmp_path / "out").exists()


def test_existing_folder_needs_overwrite(mixture: Path, tmp_path: Path):
    out = tmp_path / "hub"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["publish", str(mixture), "--local", str(out), "--no-exports"])
    assert result.exit_code == 2 and "exists and is not empty; pass --overwrite" in result.output
    assert (out / "keep.txt").read_text() == "mine"
    result = runner.invoke(app, ["publish", str(mixture), "--local", str(out), "--no-exports", "--overwrite"])
    assert result.exit_code == 2 and "is not a published dataset folder" in result.output  # never someone else's folder
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    assert runner.invoke(app, ["publish", str(mixture), "--local", str(out), "--no-exports"]).exit_code == 0
    (out / "stale.txt").write_text("from an earlier publish")
    result = runner.invoke(app, ["publish", str(mixture), "--local", str(out), "--no-exports", "--overwrite"])
    assert result.exit_code == 0 and (out / "README.md").is_file() and not (out / "stale.txt").exists()


class LocalHub:
    """A Hub that keeps each dataset repo as a folder, with huggingface_hub's own pattern matching
    (``filter_repo_objects``) for ``ignore_patterns`` / ``delete_patterns`` and its create_repo rule:
    ``exist_ok=True`` leaves an existing repo's visibility alone."""

    def __init__(self, root: Path, refuse_settings: bool = False) -> None:
        self.root = root
        self.private: dict[str, bool] = {}
        self.refuse_settings = refuse_settings
        self.calls: list[str] = []

    def folder(self, repo_id: str) -> Path:
        return self.root / repo_id.replace("/", "__")

    def files(self, repo_id: str) -> list[str]:
        folder = self.folder(repo_id)
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())

    def create_repo(self, repo_id, *, repo_type, private=False, exist_ok=False):
        self.calls.append("create_repo")
        assert repo_type == "dataset"
        if repo_id in self.private and not exist_ok:
            raise FileExistsError(repo_id)
        self.private.setdefault(repo_id, bool(private))
        self.folder(repo_id).mkdir(parents=True, exist_ok=True)
        return SimpleNamespace(url=f"https://huggingface.co/datasets/{repo_id}")

    def repo_info(self, repo_id, *, repo_type):
        self.calls.append("repo_info")
        return SimpleNamespace(private=self.private[repo_id])

    def update_repo_settings(self, repo_id, *, private=None, repo_type=None):
        self.calls.append("update_repo_settings")
        if self.refuse_settings:
            raise PermissionError("403 Forbidden: you are not an admin of this organization")
        self.private[repo_id] = bool(private)

    def upload_folder(self, *, repo_id, folder_path, repo_type, ignore_patterns=None, delete_patterns=None, commit_message=None):
        from huggingface_hub.utils import filter_repo_objects

        self.calls.append("upload_folder")
        local = Path(folder_path)
        adds = list(filter_repo_objects(
            [str(p.relative_to(local)) for p in local.rglob("*") if p.is_file()], ignore_patterns=ignore_patterns
        ))
        remote = self.folder(repo_id)
        for path in filter_repo_objects(self.files(repo_id), allow_patterns=delete_patterns) if delete_patterns else []:
            if path not in adds:
                (remote / path).unlink()
        for path in adds:
            (remote / path).parent.mkdir(parents=True, exist_ok=True)
            (remote / path).write_bytes((local / path).read_bytes())


def test_republish_with_fewer_shards_leaves_no_stale_file(mixture: Path, tmp_path: Path, monkeypatch):
    from datasets import load_dataset

    hub = LocalHub(tmp_path / "hub")
    monkeypatch.setattr(push, "_api", lambda: hub)
    rows = read_meta(mixture).splits["train"]
    repo = "org/mix"
    first = PublishConfig(source=mixture, repo_id=repo, shard_rows=max(1, -(-rows // 3)), exports=["trl"])
    run_publish(first)
    before = [p for p in hub.files(repo) if p.startswith("data/mixture/")]
    assert len(before) == 3 and before[0].endswith("-of-00003.parquet")
    (hub.folder(repo) / "notes.md").write_text("the owner's own file")  # outside the card's globs: kept

    run_publish(first.model_copy(update={"shard_rows": rows}))
    after = hub.files(repo)
    assert [p for p in after if p.startswith("data/mixture/")] == ["data/mixture/train-00000-of-00001.parquet"]
    assert not any("-of-00003" in p for p in after) and "notes.md" in after
    assert len(load_dataset(str(hub.folder(repo)), "mixture")["train"]) == rows  # no duplicated rows
    assert len(load_dataset(str(hub.folder(repo)), "trl")["train"]) == rows


def test_private_is_applied_to_an_existing_repo(mixture: Path, tmp_path: Path, monkeypatch):
    hub = LocalHub(tmp_path / "hub")
    monkeypatch.setattr(push, "_api", lambda: hub)
    args = ["publish", str(mixture), "--repo-id", "org/mix", "--no-exports"]
    assert runner.invoke(app, args).exit_code == 0 and hub.private["org/mix"] is False
    result = runner.invoke(app, [*args, "--private"])
    assert result.exit_code == 0, result.output
    assert hub.private["org/mix"] is True
    assert hub.calls[-3:] == ["repo_info", "update_repo_settings", "upload_folder"]  # private before any upload
    hub.calls.clear()
    assert runner.invoke(app, args).exit_code == 0  # no --private: an existing repo keeps its visibility
    assert hub.private["org/mix"] is True and "update_repo_settings" not in hub.calls


def test_private_refused_for_an_existing_repo_is_one_line_and_uploads_nothing(mixture: Path, tmp_path: Path, monkeypatch):
    hub = LocalHub(tmp_path / "hub", refuse_settings=True)
    hub.create_repo("org/mix", repo_type="dataset", private=False)
    monkeypatch.setattr(push, "_api", lambda: hub)
    result = runner.invoke(app, ["publish", str(mixture), "--repo-id", "org/mix", "--private", "--no-exports"])
    assert result.exit_code == 3
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "--private: org/mix exists and is public, and could not be made private" in errors[0]
    assert "nothing was uploaded" in errors[0] and "upload_folder" not in hub.calls and hub.files("org/mix") == []


def test_no_library_code_sets_hf_variables_or_names_huggingface_cli():
    import re

    from helpers import REPO

    sources = [p for folder in ("src", "flows") for p in (REPO / folder).rglob("*.py")]
    offenders = [
        f"{p.relative_to(REPO)}:{i}"
        for p in sources
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if "huggingface-cli" in line or re.search(r"environ(\[[\"']HF_|\.setdefault\([\"']HF_|\.update\(.*HF_)", line)
    ]
    assert offenders == []
