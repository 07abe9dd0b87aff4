"""Push a built Hub-layout folder to a Hugging Face dataset repo.

``push_to_hub`` has no dry run, so we build the folder first (``build.py``) and upload exactly that
folder with ``HfApi.upload_folder``. The token comes from ``huggingface_hub`` itself (``HF_TOKEN``
or a prior ``huggingface-cli login``); we never read, print or write it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BackendError
from .build import MARKER
from .config import PublishConfig

if TYPE_CHECKING:
    from huggingface_hub import HfApi


def _api() -> HfApi:  # tests replace this to check the upload without a network
    from huggingface_hub import HfApi

    return HfApi()


def push_folder(config: PublishConfig, folder: Path) -> str:
    """Create the dataset repo if needed and upload ``folder``; returns the repo URL."""
    assert config.repo_id is not None
    api = _api()
    try:
        repo = api.create_repo(config.repo_id, repo_type="dataset", private=config.private, exist_ok=True)
        api.upload_folder(
            repo_id=config.repo_id,
            folder_path=str(folder),
            repo_type="dataset",
            ignore_patterns=[MARKER],  # holds a local path; only --overwrite needs it
            commit_message=config.commit_message or f"scenario-forge: publish {config.source.name}",
        )
    except Exception as exc:  # noqa: BLE001 - auth, network and permission errors all end here
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise BackendError(
            f"could not push to {config.repo_id}: {type(exc).__name__}: {first} "
            "(log in with `huggingface-cli login` or set HF_TOKEN; the local folder is intact)"
        ) from None
    return str(getattr(repo, "url", None) or f"https://huggingface.co/datasets/{config.repo_id}")
