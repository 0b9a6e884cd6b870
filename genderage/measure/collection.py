"""What an audit reads: photos as predict.py takes them, tables of paths with other columns, or a `datasets` dataset.

Every photo gets an id (its path, or NAME[SPLIT][i] for a dataset's image) and the columns a report can group by:
`folder` (the photo's folder) for photos found on disk, the table's own columns for a CSV or Parquet, the dataset's
columns (class labels by name) for a dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..serving.predict import NoPhotosError, list_photos

TABLE_SUFFIXES = {".csv", ".parquet"}


@dataclass
class Collection:
    """The photos of an audit, in order, with a row of grouping columns each (`table`, whose `photo` is the id)."""

    table: pd.DataFrame
    dataset: object | None = None  # a datasets.Dataset whose images the ids point into (None: photos are files)
    image_column: str = "image"

    def contents(self, positions: list[int]) -> list[bytes | None] | None:
        """The photos' bytes for a dataset's images (None for files: the workers read those)."""
        if self.dataset is None:
            return None
        images = self.dataset.select(positions)[self.image_column]
        return [image["bytes"] if image.get("bytes") else Path(image["path"]).read_bytes() for image in images]


def _table(path: Path, path_column: str) -> pd.DataFrame:
    table = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    if path_column not in table.columns:
        raise ValueError(f"{path} has no column {path_column!r} (its columns: {', '.join(map(str, table.columns))}); "
                         "name the column of photo paths with --path-column")
    if table.empty:
        raise NoPhotosError(f"the table {path} has no rows")
    photos = [p if Path(p).is_absolute() else str(path.parent / p) for p in table.pop(path_column).astype(str)]
    table.insert(0, "photo", photos)
    return table


def _photos(item: str) -> pd.DataFrame:
    photos = list_photos([item])
    root = Path(item)
    folders = [str(Path(p).parent.relative_to(root)) if root.is_dir() else str(Path(p).parent) for p in photos]
    return pd.DataFrame({"photo": photos, "folder": folders})


def _dataset(name: str, split: str, image_column: str) -> tuple[pd.DataFrame, object]:
    import datasets

    if Path(name).exists():
        loaded = datasets.load_from_disk(name)
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(f"{name} has no split {split!r}; its splits: {', '.join(loaded)}")
            loaded = loaded[split]
    else:  # a Hub id (needs the network, or the Hub cache with HF_HUB_OFFLINE=1)
        loaded = datasets.load_dataset(name, split=split)
    if image_column not in loaded.column_names:
        raise ValueError(f"the dataset {name} has no column {image_column!r} (its columns: {', '.join(loaded.column_names)}); "
                         "name the image column with --image-column")
    loaded = loaded.cast_column(image_column, datasets.Image(decode=False))  # bytes to the workers, decoded there
    columns = {}
    for column, feature in loaded.features.items():
        if column == image_column or not isinstance(feature, (datasets.Value, datasets.ClassLabel)):
            continue
        values = loaded[column]
        columns[column] = [feature.int2str(v) if isinstance(feature, datasets.ClassLabel) and v is not None and v >= 0 else v
                           for v in values]
    table = pd.DataFrame({"photo": [f"{name}[{split}][{i}]" for i in range(len(loaded))], **columns})
    if table.empty:
        raise NoPhotosError(f"the dataset {name} ({split}) has no rows")
    return table, loaded


def read_collection(inputs: list[str], path_column: str = "path", dataset: str | None = None,
                    image_column: str = "image", split: str = "train") -> Collection:
    """The collection named by `inputs` (folders, globs, list files, CSV or Parquet tables) or by `dataset`.
    Photos named twice are audited once (the first row's columns stand)."""
    if dataset is not None:
        if inputs:
            raise ValueError("give photos or --dataset, not both")
        table, loaded = _dataset(dataset, split, image_column)
        return Collection(table, loaded, image_column)
    if not inputs:
        raise ValueError("name the photos to audit (folders, globs, list files, a CSV or Parquet table) or --dataset")
    parts = []
    for item in inputs:
        path = Path(item)
        if path.suffix.lower() in TABLE_SUFFIXES:
            if not path.is_file():
                raise NoPhotosError(f"no such file: {item}")
            parts.append(_table(path, path_column))
        else:
            parts.append(_photos(item))
    table = pd.concat(parts, ignore_index=True).drop_duplicates("photo", ignore_index=True)
    return Collection(table)
