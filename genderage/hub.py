"""Publishing to the Hugging Face Hub. Every function has a dry run that builds the exact upload folder offline."""

from __future__ import annotations

import shutil
from pathlib import Path

from huggingface_hub import DatasetCard, HfApi


def push_dataset(data_dir: str | Path, repo_id: str, private: bool = False, dry_run: bool = False) -> str:
    """Publish a prepared dataset as Parquet shards (the `datasets` library's own push) with its card.

    The dry run writes `<data_dir>/hub_upload/` holding the Parquet files and README.md that would be sent.
    """
    from .data import CARD_FILE, load_prepared

    data_dir = Path(data_dir)
    dataset = load_prepared(data_dir)
    card = DatasetCard((data_dir / CARD_FILE).read_text())
    if dry_run:
        upload = data_dir / "hub_upload"
        shutil.rmtree(upload, ignore_errors=True)
        (upload / "data").mkdir(parents=True)
        for split, part in dataset.items():
            part.to_parquet(upload / "data" / f"{split}-00000-of-00001.parquet")
        card.save(upload / "README.md")
        return f"dry run: the upload for {repo_id} is in {upload}"
    dataset.push_to_hub(repo_id, private=private)
    # push_to_hub wrote a card with the schema metadata; keep that metadata and add our text and licence.
    hub_card = DatasetCard.load(repo_id, repo_type="dataset")
    hub_card.data.update({k: v for k, v in card.data.to_dict().items() if k not in hub_card.data.to_dict()})
    hub_card.text = card.text
    hub_card.push_to_hub(repo_id, repo_type="dataset")
    return f"pushed https://huggingface.co/datasets/{repo_id}"


def upload_folder(folder: str | Path, repo_id: str, repo_type: str, private: bool = False, dry_run: bool = False,
                  api: HfApi | None = None, **create_kwargs) -> str:
    """Create the repo if needed and upload `folder` as its content; the dry run only names the folder."""
    if dry_run:
        return f"dry run: {folder} is what would be uploaded to the {repo_type} repo {repo_id}"
    api = api or HfApi()
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **create_kwargs)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type,
                      commit_message="Upload from genderage")
    return f"uploaded {folder} to {repo_type} {repo_id}"
