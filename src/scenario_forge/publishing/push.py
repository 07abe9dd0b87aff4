"""Push a built Hub-layout folder to a Hugging Face dataset repo.

``push_to_hub`` has no dry run, so we build the folder first (``build.py``) and upload exactly that
folder with ``HfApi.upload_folder``. The token comes from ``huggingface_hub`` itself (``HF_TOKEN``
or a prior ``hf auth login``); we never read, print or write it.

A republish replaces the data: the upload deletes the remote files that the card's ``data_files``
globs match and that this upload does not bring (``delete_patterns``), so a mixture republished with
fewer shards leaves no stale ``train-*-of-00003`` file for the glob to pick up (and no duplicated
rows). ``--private`` makes an existing public repo private *before* anything is uploaded
(``update_repo_settings``); if that is refused, nothing is uploaded. Without ``--private`` an
existing repo keeps its visibility (a publish never makes a repo public).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ..errors import BackendError
from .build import MARKER
from .config import PublishConfig

if TYPE_CHECKING:
    from huggingface_hub import HfApi


def _api() -> HfApi:  # tests replace this to check the upload without a network
    from huggingface_hub import HfApi

    return HfApi()


def data_globs(folder: Path) -> list[str]:
    """The ``data_files`` globs of the built card (``README.md`` front matter), e.g.
    ``data/mixture/train-*.parquet``: the remote files a republish replaces."""
    text = (folder / "README.md").read_text(encoding="utf-8")
    front = text.split("---", 2)[1] if text.startswith("---") else ""
    configs = (yaml.safe_load(front) or {}).get("configs") or []
    globs = {entry["path"] for config in configs for entry in config.get("data_files") or []}
    return sorted(globs)


def _make_private(api: HfApi, repo_id: str) -> None:
    """``--private`` for a repo that already exists: switch it to private, or refuse in one line."""
    info = api.repo_info(repo_id, repo_type="dataset")
    if getattr(info, "private", None):
        return
    try:
        api.update_repo_settings(repo_id, private=True, repo_type="dataset")
    except Exception as exc:  # noqa: BLE001 - no permission, an org policy, network: all refuse the push
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise BackendError(
            f"--private: {repo_id} exists and is public, and could not be made private ({type(exc).__name__}: {first}); "
            "nothing was uploaded"
        ) from None


def push_folder(config: PublishConfig, folder: Path) -> str:
    """Create the dataset repo if needed (or make an existing one private with ``--private``) and
    upload ``folder``, deleting stale data files; returns the repo URL."""
    assert config.repo_id is not None
    api = _api()
    delete = data_globs(folder)
    try:
        repo = api.create_repo(config.repo_id, repo_type="dataset", private=config.private, exist_ok=True)
        if config.private:
            _make_private(api, config.repo_id)
        api.upload_folder(
            repo_id=config.repo_id,
            folder_path=str(folder),
            repo_type="dataset",
            ignore_patterns=[MARKER],  # holds a local path; only --overwrite needs it
            delete_patterns=delete,  # remote data files this upload does not replace
            commit_message=config.commit_message or f"scenario-forge: publish {config.source.name}",
        )
    except BackendError:
        raise
    except Exception as exc:  # noqa: BLE001 - auth, network and permission errors all end here
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise BackendError(
            f"could not push to {config.repo_id}: {type(exc).__name__}: {first} "
            "(log in with `hf auth login` or set HF_TOKEN; the local folder is intact)"
        ) from None
    return str(getattr(repo, "url", None) or f"https://huggingface.co/datasets/{config.repo_id}")
