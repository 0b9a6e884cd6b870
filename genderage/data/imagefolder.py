"""Merge label sources into one clean, de-duplicated, split Hugging Face ImageFolder, and load it back."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import partial
from multiprocessing import Pool
from pathlib import Path

from tqdm.auto import tqdm

from ..labels import AGE_GROUPS, GENDERS
from .dedup import Fingerprint, deduplicate
from .images import CleaningOptions, FaceCropper, ImageInfo, process_image
from .sources import Record, SourceError, SourceSpec, read_source
from .splits import SPLITS, stratified_holdout, stratified_split

logger = logging.getLogger(__name__)

METADATA_FILE = "metadata.jsonl"
DROPPED_FILE = "dropped.csv"
HOLDOUT_DIR = "holdout"  # OUT/holdout/NAME.csv: a source's held-out photos, as a csv= source of the original files
REPORT_FILE = "report.json"
CARD_FILE = "README.md"


def dataset_features():
    """The prepared dataset's schema: labels as `ClassLabel`s so they stay integers with names."""
    from datasets import ClassLabel, Features, Image, Value

    return Features(
        {
            "image": Image(),
            "gender": ClassLabel(names=GENDERS),
            "age": Value("int32"),
            "age_group": ClassLabel(names=AGE_GROUPS),
            "race": Value("string"),
            "source": Value("string"),
            "source_path": Value("string"),
        }
    )


def load_prepared(data_dir: str | Path):
    """Load a folder written by `prepare_dataset` as a `DatasetDict` (train/validation/test) with typed labels."""
    from datasets import load_dataset

    data_dir = Path(data_dir)
    if not (data_dir / REPORT_FILE).is_file():
        raise FileNotFoundError(f"{data_dir} is not a prepared dataset (no {REPORT_FILE}); run prepare_dataset.py first")
    return load_dataset("imagefolder", data_dir=str(data_dir), features=dataset_features())


def face_chip_of(data_dir: str | Path) -> str | None:
    """How a prepared folder's faces were cut, when not around the detector's box (`benchmarks/recut_chips.py --chip`)."""
    report = Path(data_dir) / REPORT_FILE
    return json.loads(report.read_text()).get("face_chip") if report.is_file() else None


@dataclass
class PrepareConfig:
    """Everything `prepare_dataset` needs; the CLI fills it from flags."""

    sources: list[SourceSpec]
    output_dir: Path
    seed: int = 42
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    cleaning: CleaningOptions = field(default_factory=CleaningOptions)
    near_duplicate_distance: int = 12  # bits of the 256-bit dHash; -1 turns near-duplicate search off
    test_source: str | None = None
    # {source name: photos} held out of every split, stratified by race × age group, listed as original photos for
    # measuring through the app's detect path (a yardstick for photos like that source's, never trained on).
    holdout: dict[str, int] = field(default_factory=dict)
    workers: int = max(1, os.cpu_count() or 1)
    overwrite: bool = False
    face_cropper: FaceCropper | None = None  # needed by faces=crop sources (picklable: it runs in worker processes)

    def __post_init__(self) -> None:
        if not self.sources:
            raise SourceError("give at least one --source KIND=PATH")
        if len(self.ratios) != 3 or any(r < 0 for r in self.ratios) or abs(sum(self.ratios) - 1) > 1e-6:
            raise ValueError(f"split ratios must be three non-negative numbers summing to 1, got {self.ratios}")
        names = [spec.name for spec in self.sources]
        if self.test_source and self.test_source not in names:
            raise SourceError(f"--test-source {self.test_source!r} is not one of the sources {names}")
        for name, size in self.holdout.items():
            if name not in names:
                raise SourceError(f"--hold-out {name}={size}: {name!r} is not one of the sources {names}")
        cropped = [spec.name for spec in self.sources if spec.crop_faces]
        if cropped and self.face_cropper is None:
            raise SourceError(f"sources {cropped} ask for faces=crop, but no face_cropper was given "
                              "(genderage.serving.faces.largest_face_crop crops like the app)")


def _read_all(specs: list[SourceSpec]) -> tuple[list[Record], list[tuple[str, str, str, str]], list[dict], dict]:
    """Every source's records, dropped and ignored inputs, and per source its licence and the labels it withholds."""
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise SourceError(f"source names must be unique, got {names}; name them with ,name=...")
    records, dropped, ignored, source_info = [], [], [], {}
    for spec in specs:
        result = read_source(spec)
        logger.info("source %s (%s): %d labelled, %d unusable labels", spec.name, spec.kind, len(result.records), len(result.dropped))
        records += result.records
        dropped += [(path, spec.name, "file", reason) for path, reason in result.unreadable]
        dropped += [(path, spec.name, "labels", reason) for path, reason in result.dropped]
        ignored += [{"path": path, "source": spec.name, "reason": reason} for path, reason in result.ignored]
        source_info[spec.name] = {"license": spec.license, "train_labels": "+".join(spec.train_labels),
                                   "withheld": result.withheld}
    return records, dropped, ignored, source_info


def _prepare_output(config: PrepareConfig) -> Path:
    out = config.output_dir
    if out.exists() and any(out.iterdir()):
        if not config.overwrite:
            raise FileExistsError(f"{out} is not empty; choose another --output or pass --overwrite")
        if not (out / REPORT_FILE).exists():
            raise FileExistsError(f"refusing to overwrite {out}: it is not a prepared dataset")
        shutil.rmtree(out)
    staging = out / ".staging"
    staging.mkdir(parents=True)
    return staging


def _process_images(records: list[Record], staging: Path, config: PrepareConfig) -> list[ImageInfo]:
    work = partial(_process_one, output_dir=str(staging), options=config.cleaning, face_cropper=config.face_cropper)
    cropped = {spec.name for spec in config.sources if spec.crop_faces}
    tasks = [(i, record.source_path, record.source in cropped) for i, record in enumerate(records)]
    bar = partial(tqdm, total=len(tasks), desc="decode + hash", unit="img")
    if config.workers <= 1:
        return [work(task) for task in bar(tasks)]
    with Pool(config.workers) as pool:
        return list(bar(pool.imap(work, tasks, chunksize=64)))


def _process_one(task: tuple[int, str, bool], output_dir: str, options: CleaningOptions, face_cropper: FaceCropper | None) -> ImageInfo:
    return process_image(*task[:2], output_dir, options, face_cropper if task[2] else None)


def prepare_dataset(config: PrepareConfig) -> dict:
    """Read, clean, de-duplicate and split the sources into `config.output_dir`; return the report."""
    started = time.perf_counter()
    records, dropped, ignored, source_info = _read_all(config.sources)
    if not records:
        raise SourceError("the sources hold no labelled images")
    staging = _prepare_output(config)

    infos = _process_images(records, staging, config)
    decoded = [i for i, info in enumerate(infos) if info.reason is None]
    dropped += [(records[i].source_path, records[i].source, "image", infos[i].reason) for i, info in enumerate(infos) if info.reason]

    decision = deduplicate(
        [records[i] for i in decoded],
        [Fingerprint(infos[i].sha256, infos[i].dhash) for i in decoded],
        config.near_duplicate_distance,
    )
    for position, reason in decision.dropped:
        index = decoded[position]
        dropped.append((records[index].source_path, records[index].source, "duplicate", reason))
        (staging / infos[index].output_name).unlink(missing_ok=True)
    kept = [decoded[position] for position in decision.keep]
    held = _hold_out(config, records, kept)
    for i in held:
        (staging / infos[i].output_name).unlink(missing_ok=True)
    kept = [i for i in kept if i not in held]

    # Unknown labels sort after the known ones, so adding a partly labelled source leaves the other rows' splits as they were.
    splits = stratified_split(
        [f"{records[i].gender or 'unknown'}|{records[i].age_group or 'unknown'}" for i in kept],
        config.ratios,
        config.seed,
        [records[i].source == config.test_source for i in kept],
    )
    rows = _write_splits(config.output_dir, staging, [(records[i], infos[i]) for i in kept], splits)
    _write_dropped(config.output_dir / DROPPED_FILE, dropped)

    holdout_counts = _write_holdouts(config.output_dir, [records[i] for i in sorted(held)])
    for name, info in source_info.items():
        info["held_out"] = holdout_counts.get(name, 0)
    report = _build_report(config, records, rows, dropped, ignored, source_info, decision, time.perf_counter() - started)
    (config.output_dir / REPORT_FILE).write_text(json.dumps(report, indent=2))
    from .dataset_card import build_dataset_card

    (config.output_dir / CARD_FILE).write_text(build_dataset_card(report, rows))
    return report


def _write_splits(out: Path, staging: Path, items: list[tuple[Record, ImageInfo]], splits: list[str]) -> list[dict]:
    rows = []
    for split in SPLITS:
        (out / split).mkdir(exist_ok=True)
    handles = {split: (out / split / METADATA_FILE).open("w") for split in SPLITS}
    try:
        for (record, info), split in zip(items, splits):
            (staging / info.output_name).rename(out / split / info.output_name)
            row = {"file_name": info.output_name, **asdict(record)}
            handles[split].write(json.dumps(row) + "\n")
            rows.append({**row, "split": split})
    finally:
        for handle in handles.values():
            handle.close()
    shutil.rmtree(staging)
    return rows


def _hold_out(config: PrepareConfig, records: list[Record], kept: list[int]) -> set[int]:
    """The kept rows that `config.holdout` sets aside, stratified by race × age group within each named source."""
    held: set[int] = set()
    for name, size in config.holdout.items():
        rows = [i for i in kept if records[i].source == name]
        chosen = stratified_holdout([f"{records[i].race}|{records[i].age_group}" for i in rows], size, config.seed)
        held |= {i for i, is_held in zip(rows, chosen) if is_held}
    return held


def _write_holdouts(out: Path, records: list[Record]) -> dict[str, int]:
    """OUT/holdout/NAME.csv per source: the original photos' absolute paths and labels (a `csv=` source)."""
    counts = Counter(record.source for record in records)
    if counts:
        (out / HOLDOUT_DIR).mkdir()
    for name in counts:
        with (out / HOLDOUT_DIR / f"{name}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file_name", "gender", "age", "race"])  # age: in years where known, else its group
            writer.writerows([os.path.abspath(r.source_path), r.gender or "", r.age_group if r.age is None else r.age,
                              r.race or ""] for r in records if r.source == name)
    return dict(counts)


def _write_dropped(path: Path, dropped: list[tuple[str, str, str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source_path", "source", "stage", "reason"])
        writer.writerows(dropped)


def _build_report(config, records, rows, dropped, ignored, source_info, decision, seconds) -> dict:
    return {
        "inputs": len(records) + sum(1 for d in dropped if d[2] in ("file", "labels")),
        "kept": len(rows),
        "dropped": len(dropped),
        "dropped_by_stage": dict(Counter(d[2] for d in dropped)),
        "ignored": ignored,  # not inputs: hidden files and folders, annotation files, links back into the source
        "duplicate_groups": decision.groups,
        "conflicting_duplicate_groups": decision.conflicting_groups,
        "splits": {s: sum(r["split"] == s for r in rows) for s in SPLITS},
        "by_split_gender": {f"{s}/{g}": n for (s, g), n in sorted(Counter((r["split"], r["gender"] or "unknown") for r in rows).items())},
        "sources": {
            spec.name: {"kind": spec.kind, "path": str(spec.path), **source_info[spec.name],
                        "kept": sum(r["source"] == spec.name for r in rows)}
            for spec in config.sources
        },
        "settings": {
            "seed": config.seed,
            "ratios": list(config.ratios),
            "min_side": config.cleaning.min_side,
            "max_side": config.cleaning.max_side,
            "near_duplicate_distance": config.near_duplicate_distance,
            "test_source": config.test_source,
            "holdout": config.holdout,
        },
        "seconds": round(seconds, 1),
    }
