"""Labelled images for measuring: a prepared split, or any raw source prepare_dataset.py reads, as PIL images + label rows."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image


@dataclass
class LabelledImages:
    """Images with their labels (None where unknown), and the inputs that could not be used."""

    images: list[Image.Image] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)  # gender, age_group (names), age, race, source
    skipped: list[tuple[str, str]] = field(default_factory=list)


def from_prepared(data_dir: str, split: str, limit: int | None = None, source: str | None = None) -> LabelledImages:
    """A prepared split (optionally only the rows of one `source`), `limit` images drawn at random (seed 0)."""
    from .imagefolder import load_prepared

    split_metadata(data_dir, split)  # a split that is not there: one line naming the others, before loading anything
    dataset = load_prepared(data_dir)[split]
    if source is not None:
        dataset = dataset.filter(lambda value: value == source, input_columns="source")
    if limit:
        dataset = dataset.shuffle(seed=0).select(range(min(limit, len(dataset))))
    genders, groups = dataset.features["gender"].names, dataset.features["age_group"].names
    result = LabelledImages()
    for example in dataset:
        result.images.append(example["image"].convert("RGB"))
        result.rows.append({
            "gender": None if example["gender"] is None else genders[example["gender"]],
            "age_group": None if example["age_group"] is None else groups[example["age_group"]],
            "age": example["age"], "race": example["race"], "source": example["source"],
        })
    return result


def from_source(spec_text: str, limit: int | None = None) -> LabelledImages:
    """Read a raw source (any kind prepare_dataset.py takes); unusable files are skipped with their reason."""
    from .images import ImageRejected, open_rgb
    from .sources import parse_source_spec, read_source

    found = read_source(parse_source_spec(spec_text))
    records = spread(found.records, limit)
    result = LabelledImages(skipped=list(found.dropped))
    for record in records:
        try:
            image, _ = open_rgb(record.source_path)
        except (ImageRejected, OSError) as error:
            result.skipped.append((record.source_path, str(error)))
            continue
        result.images.append(image)
        result.rows.append({"gender": record.gender, "age_group": record.age_group, "age": record.age,
                            "race": record.race, "source": record.source})
    return result


def spread(items: list, limit: int | None) -> list:
    """`limit` items spread evenly over the whole list (all of them without a limit). A stride of
    len // limit would take a prefix whenever the list is shorter than twice the limit: with files sorted by name,
    e.g. UTKFace's, that leaves out whole ages."""
    if not limit or limit >= len(items):
        return list(items)
    return [items[i * len(items) // limit] for i in range(limit)]


def split_metadata(data_dir: str, split: str):
    """A prepared split's metadata.jsonl; a split that is not there is a ValueError naming the ones that are."""
    from pathlib import Path

    metadata = Path(data_dir) / split / "metadata.jsonl"
    if not metadata.is_file():
        splits = sorted(p.parent.name for p in Path(data_dir).glob("*/metadata.jsonl"))
        raise ValueError(f"{data_dir} has no split {split!r}; its splits: {', '.join(splits) or 'none (not a prepared dataset)'}")
    return metadata


def originals_of_prepared(data_dir: str, split: str, source: str | None = None, limit: int | None = None) -> LabelledImages:
    """The original photos behind a prepared split (its metadata's source_path, as prepare_dataset.py read them):
    measuring through the app's detect path on them, not on the chips prepare cut. Missing files are skipped."""
    import json
    from pathlib import Path

    from .images import ImageRejected, open_rgb

    lines = split_metadata(data_dir, split).read_text().splitlines()
    rows = [row for row in map(json.loads, lines) if source is None or row["source"] == source]
    rows = spread(rows, limit)
    result = LabelledImages()
    for row in rows:
        try:
            image, _ = open_rgb(row["source_path"])
        except (ImageRejected, OSError) as error:
            result.skipped.append((row["source_path"], str(error)))
            continue
        result.images.append(image)
        result.rows.append({key: row.get(key) for key in ("gender", "age_group", "age", "race", "source")})
    return result
