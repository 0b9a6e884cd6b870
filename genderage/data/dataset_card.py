"""The prepared dataset's card: counts per split × gender × age group × source, licences, cleaning report."""

from __future__ import annotations

from collections import Counter

from huggingface_hub import DatasetCard, DatasetCardData

from ..labels import AGE_GROUPS
from .splits import SPLITS


def _counts_table(rows: list[dict]) -> str:
    counts = Counter((r["source"], r["split"], r["gender"] or "unknown", r["age_group"] or "unknown") for r in rows)
    groups = AGE_GROUPS + (["unknown"] if any(r["age_group"] is None for r in rows) else [])
    lines = ["| source | split | gender | " + " | ".join(groups) + " | total |", "|" + "---|" * (len(groups) + 4)]
    for source in sorted({r["source"] for r in rows}):
        for split in SPLITS:
            for gender in sorted({key[2] for key in counts if key[0] == source}):
                cells = [counts[(source, split, gender, g)] for g in groups]
                if sum(cells):
                    lines.append(f"| {source} | {split} | {gender} | " + " | ".join(map(str, cells)) + f" | {sum(cells)} |")
    return "\n".join(lines)


def build_dataset_card(report: dict, rows: list[dict]) -> str:
    """Render the card (YAML metadata + markdown) for a prepared dataset."""
    data = DatasetCardData(
        license="other",
        task_categories=["image-classification"],
        tags=["faces", "gender", "age", "genderage"],
        pretty_name="genderage prepared dataset",
    )
    sources = "\n".join(
        f"- **{name}** ({info['kind']}, {info['kept']} images kept): licence: {info['license']}{_label_notes(name, info)}"
        for name, info in report["sources"].items()
    )
    dropped = ", ".join(f"{stage}: {n}" for stage, n in report["dropped_by_stage"].items()) or "none"
    settings = report["settings"]
    held_out = f"; source `{settings['test_source']}` held out as the test set" if settings["test_source"] else ""
    content = f"""---
{data.to_yaml()}
---

# genderage prepared dataset

Face images merged from {len(report['sources'])} source(s) by `prepare_dataset.py`, with `gender`
(female/male: binary perceived gender as annotated by each source, not identity) and `age` / `age_group`
(FairFace bins) labels. Load it with:

```python
from genderage.data.imagefolder import load_prepared
dataset = load_prepared("path/to/this/folder")
```

## Sources and licences
The licence of each image is its source's. Sources marked research-only must not be used commercially.

{sources}

## Splits
train {report['splits']['train']}, validation {report['splits']['validation']}, test {report['splits']['test']}
(seed {settings['seed']}, ratios {settings['ratios']}, stratified by gender × age group{held_out}).

{_counts_table(rows)}

## Cleaning
{report['inputs']} inputs, {report['kept']} kept, {report['dropped']} dropped ({dropped}); every dropped
file is listed with its reason in `dropped.csv`. Images were decode-verified, EXIF-rotated and converted
to RGB; images under {settings['min_side']} px were dropped. Exact (SHA-256) and near duplicates (256-bit
difference hash, Hamming distance ≤ {settings['near_duplicate_distance']}) were grouped across sources:
{report['duplicate_groups']} groups, of which {report['conflicting_duplicate_groups']} had conflicting labels
and were dropped whole; the others kept one image, so no duplicate can straddle splits.
"""
    return str(DatasetCard(content))


def _label_notes(name: str, info: dict) -> str:
    """What a source may not teach (train_labels) and what it holds out, in words."""
    notes = ""
    if info.get("withheld"):
        counts = ", ".join(f"{key} ×{n}" for key, n in sorted(info["withheld"].items()))
        notes += (f". Trains on its **{info['train_labels']}** labels only (`train_labels`): its other labels are "
                  f"unknown here ({counts} withheld), e.g. because the source holds one gender only")
    if info.get("held_out"):
        notes += (f". {info['held_out']} photos held out of every split, stratified by race × age group: "
                  f"`holdout/{name}.csv` lists the original photos, to measure through the detect path")
    return notes


def format_summary(report: dict) -> str:
    """The table printed at the end of `prepare_dataset.py`."""
    lines = [
        f"inputs {report['inputs']}  kept {report['kept']}  dropped {report['dropped']}  "
        f"({', '.join(f'{k} {v}' for k, v in report['dropped_by_stage'].items()) or 'none'})  "
        f"ignored (hidden, annotation files; see report.json) {len(report['ignored'])}  in {report['seconds']} s",
        f"duplicate groups {report['duplicate_groups']} (conflicting, dropped whole: {report['conflicting_duplicate_groups']})",
        f"{'split':<12}{'female':>8}{'male':>8}{'unknown':>9}{'total':>8}",
    ]
    for split, total in report["splits"].items():
        counts = [report["by_split_gender"].get(f"{split}/{g}", 0) for g in ("female", "male", "unknown")]
        lines.append(f"{split:<12}{counts[0]:>8}{counts[1]:>8}{counts[2]:>9}{total:>8}")
    for name, info in report["sources"].items():
        if info.get("withheld"):
            lines.append(f"{name}: trains on {info['train_labels']} only; withheld {sum(info['withheld'].values())} labels")
        if info.get("held_out"):
            lines.append(f"{name}: {info['held_out']} photos held out, listed in holdout/{name}.csv")
    return "\n".join(lines)
