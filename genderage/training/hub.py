"""Publishing to the Hugging Face Hub. Every function has a dry run that builds the exact upload folder offline."""

from __future__ import annotations

import shutil
from fnmatch import fnmatch
from pathlib import Path

from huggingface_hub import DatasetCard, HfApi


def push_dataset(data_dir: str | Path, repo_id: str, private: bool = False, dry_run: bool = False) -> str:
    """Publish a prepared dataset as Parquet shards (the `datasets` library's own push) with its card.

    The dry run writes `<data_dir>/hub_upload/` holding the Parquet files and README.md that would be sent.
    """
    from ..data.imagefolder import CARD_FILE, load_prepared

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


# Training leaves these next to the model; they are not part of the published repo.
UPLOAD_IGNORE = ["checkpoint-*", "checkpoint-*/*", "runs/*", "hub_upload/*", "*.tmp"]


def files_to_upload(folder: str | Path, ignore: list[str] = UPLOAD_IGNORE) -> list[str]:
    """The relative paths `upload_folder` sends: everything in `folder` but the ignore patterns."""
    folder = Path(folder)
    paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return [p for p in paths if not any(fnmatch(p, pattern) for pattern in ignore)]


def upload_folder(folder: str | Path, repo_id: str, repo_type: str, private: bool = False, dry_run: bool = False,
                  api: HfApi | None = None, space_sdk: str | None = None) -> str:
    """Create the repo if needed and upload `folder`; the dry run lists what would be sent and sends nothing."""
    if not repo_id:
        raise ValueError("pushing needs a repo id (--hub_model_id / --push-to-hub REPO_ID)")
    files = files_to_upload(folder)
    if dry_run:
        return f"dry run: would upload {len(files)} files to the {repo_type} repo {repo_id}: " + ", ".join(files)
    api = api or HfApi()
    extra = {"space_sdk": space_sdk} if space_sdk else {}
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **extra)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type,
                      ignore_patterns=UPLOAD_IGNORE, commit_message="Upload from genderage")
    return f"uploaded {len(files)} files to https://huggingface.co/{'' if repo_type == 'model' else repo_type + 's/'}{repo_id}"
