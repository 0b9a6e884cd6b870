import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from conftest import prepared, random_image
from genderage.data.imagefolder import load_prepared
from genderage.data.splits import stratified_split
from genderage.labels import AGE_GROUPS


def metadata(out: Path) -> dict[str, list[dict]]:
    return {s: [json.loads(line) for line in (out / s / "metadata.jsonl").open()] for s in ("train", "validation", "test")}


def dropped(out: Path) -> list[dict]:
    return list(csv.DictReader((out / "dropped.csv").open()))


def test_every_input_is_kept_or_dropped_with_a_reason(tmp_path, utkface_dir, folders_dir):
    (folders_dir / "men" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folders_dir / "women" / "empty.jpg").write_bytes(b"")
    random_image(5, size=16).save(folders_dir / "women" / "tiny.png")
    out = prepared(tmp_path, f"utkface={utkface_dir}", f"folders={folders_dir}")
    rows = [r for split in metadata(out).values() for r in split]
    inputs = {str(p) for p in utkface_dir.iterdir()} | {str(p) for p in folders_dir.rglob("*.*")}
    assert {r["source_path"] for r in rows} | {d["source_path"] for d in dropped(out)} == inputs
    assert len(rows) + len(dropped(out)) == len(inputs) == 63
    reasons = {Path(d["source_path"]).name: d["reason"] for d in dropped(out)}
    assert reasons["empty.jpg"].startswith("empty file")
    assert reasons["tiny.png"].startswith("too small")
    assert "not an image" in reasons["broken.jpg"] or "corrupt" in reasons["broken.jpg"]
    report = json.loads((out / "report.json").read_text())
    assert report["inputs"] == 63 and report["kept"] == 60


def test_round_trip_through_load_dataset_with_class_labels(tmp_path, utkface_dir, folders_dir):
    out = prepared(tmp_path, f"utkface={utkface_dir}", f"folders={folders_dir}")
    dataset = load_prepared(out)
    assert set(dataset) == {"train", "validation", "test"}
    assert dataset["train"].features["gender"].names == ["female", "male"]
    assert dataset["train"].features["age_group"].names == AGE_GROUPS
    total = sum(len(split) for split in dataset.values())
    assert total == 60
    example = next(e for split in dataset.values() for e in split if e["source"] == "utkface" and e["age"] == 25)
    assert example["image"].mode == "RGB" and example["race"] in {"White", "Black", "Asian", "Indian", "Others"}
    assert example["age_group"] == AGE_GROUPS.index("20-29")
    assert Path(example["source_path"]).parent == utkface_dir
    folder_rows = [e for split in dataset.values() for e in split if e["source"] == "mw"]
    assert all(e["age"] is None and e["age_group"] is None for e in folder_rows)
    assert "| mw | train | female |" in (out / "README.md").read_text()


def test_duplicates_across_sources_are_grouped(tmp_path, utkface_dir, folders_dir):
    source = next(utkface_dir.glob("25_1_*"))  # a female, 20-29
    shutil.copy(source, folders_dir / "women" / "exact_copy.jpg")  # same bytes, agreeing labels
    buffer = io.BytesIO()
    Image.open(source).resize((44, 44)).save(buffer, "JPEG", quality=70)
    (folders_dir / "men" / "near_copy_conflict.jpg").write_bytes(buffer.getvalue())  # same photo, other gender
    out = prepared(tmp_path, f"utkface={utkface_dir}", f"folders={folders_dir}")
    reasons = {Path(d["source_path"]).name: d["reason"] for d in dropped(out)}
    assert "conflicting labels" in reasons["exact_copy.jpg"]
    assert "conflicting labels" in reasons["near_copy_conflict.jpg"]
    assert "conflicting labels" in reasons[source.name]


def test_agreeing_duplicates_keep_the_best_labelled_copy(tmp_path, utkface_dir, folders_dir):
    source = next(utkface_dir.glob("25_1_*"))
    shutil.copy(source, folders_dir / "women" / "exact_copy.jpg")
    out = prepared(tmp_path, f"utkface={utkface_dir}", f"folders={folders_dir}")
    reasons = {Path(d["source_path"]).name: d["reason"] for d in dropped(out)}
    assert reasons == {"exact_copy.jpg": f"exact duplicate of {source}"}  # the UTKFace copy also knows the age


def test_near_duplicates_never_straddle_splits(tmp_path, utkface_dir):
    for i, source in enumerate(sorted(utkface_dir.iterdir())[:10]):
        image = Image.open(source)
        image.resize((46, 46)).save(utkface_dir / f"{source.name.split('_')[0]}_{source.name.split('_')[1]}_0_2017020200000{i:04d}.jpg.chip.jpg", quality=80)
    out = prepared(tmp_path, f"utkface={utkface_dir}")
    kept = {Path(r["source_path"]).name for split in metadata(out).values() for r in split}
    assert len(kept) == 40 and len(dropped(out)) == 10


def test_splits_are_stratified_deterministic_and_follow_ratios():
    strata = [f"{g}|{a}" for g in ("female", "male") for a in AGE_GROUPS for _ in range(50)]
    first = stratified_split(strata, (0.8, 0.1, 0.1), seed=1)
    assert first == stratified_split(strata, (0.8, 0.1, 0.1), seed=1)
    assert first != stratified_split(strata, (0.8, 0.1, 0.1), seed=2)
    for stratum in set(strata):
        counts = [s for s, t in zip(first, strata) if t == stratum]
        assert (counts.count("train"), counts.count("validation"), counts.count("test")) == (40, 5, 5)


def test_tiny_strata_still_fill_every_split():
    splits = stratified_split([f"s{i}" for i in range(20)], (0.8, 0.1, 0.1), seed=0)
    assert (splits.count("train"), splits.count("validation"), splits.count("test")) == (16, 2, 2)


def test_a_source_can_be_held_out_as_the_test_set(tmp_path, utkface_dir, folders_dir):
    out = prepared(tmp_path, f"utkface={utkface_dir}", f"folders={folders_dir},name=kaggle", extra=["--test-source", "kaggle"])
    rows = metadata(out)
    assert {r["source"] for r in rows["test"]} == {"kaggle"} and len(rows["test"]) == 20
    assert {r["source"] for r in rows["train"] + rows["validation"]} == {"utkface"}


@pytest.mark.parametrize(
    "args,message",
    [
        (["--source", "utkface=/no/such/folder"], "does not exist"),
        (["--source", "folders={empty}"], "no image files"),
        (["--source", "utkface={utk}", "--test-source", "nope"], "--test-source 'nope' is not one of"),
        (["--source", "utkface={utk}", "--split-ratios", "80/30/10"], "summing to 1"),
    ],
)
def test_cli_errors_are_messages_not_tracebacks(tmp_path, utkface_dir, capsys, args, message):
    import prepare_dataset

    (tmp_path / "empty").mkdir()
    args = [a.format(empty=tmp_path / "empty", utk=utkface_dir) for a in args]
    assert prepare_dataset.main(args + ["--output", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_output_folder_is_never_silently_overwritten(tmp_path, utkface_dir, capsys):
    import prepare_dataset

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    assert prepare_dataset.main(["--source", f"utkface={utkface_dir}", "--output", str(tmp_path / "out")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert prepare_dataset.main(["--source", f"utkface={utkface_dir}", "--output", str(tmp_path / "out"), "--overwrite"]) == 2
    assert (tmp_path / "out" / "precious.txt").exists()


def test_push_dry_run_writes_parquet_and_card(tmp_path, utkface_dir):
    import pyarrow.parquet as pq

    out = prepared(tmp_path, f"utkface={utkface_dir}", extra=["--push-to-hub", "me/faces", "--dry-run"])
    upload = out / "hub_upload"
    assert sorted(p.name for p in (upload / "data").iterdir()) == [f"{s}-00000-of-00001.parquet" for s in ("test", "train", "validation")]
    assert pq.read_table(upload / "data" / "train-00000-of-00001.parquet").num_rows == json.loads((out / "report.json").read_text())["splits"]["train"]
    assert (upload / "README.md").read_text().startswith("---\nlicense: other")


def test_faces_crop_option_crops_real_faces_and_drops_faceless_photos(tmp_path):
    from skimage import data

    for folder in ("women", "men"):
        (tmp_path / "photos" / folder).mkdir(parents=True)
    Image.fromarray(data.astronaut()).save(tmp_path / "photos" / "women" / "astronaut.png")
    Image.fromarray(data.coffee()).save(tmp_path / "photos" / "men" / "coffee.png")
    out = prepared(tmp_path, f"folders={tmp_path / 'photos'},faces=crop")
    (row,) = [r for split in metadata(out).values() for r in split]
    crop = Image.open(next(out.glob(f"*/{row['file_name']}")))
    assert crop.width == crop.height and 80 < crop.width < 140  # the face (about 90 px wide), not the 512 px photo
    assert [(Path(d["source_path"]).name, d["reason"]) for d in dropped(out)] == [("coffee.png", "no face found (faces=crop)")]


def awkward_corpus(root: Path) -> None:
    """A class folder with everything a real download can hold besides plain photos."""
    import numpy as np

    men, women = root / "men", root / "women"
    random_image(2000).convert("CMYK").save(men / "cmyk.jpg")
    Image.fromarray((np.asarray(random_image(2001).convert("L"), dtype=np.uint16) * 200)).save(men / "grey16.png")
    random_image(2002).convert("P").save(women / "palette.png", transparency=0)
    random_image(2003).convert("LA").save(women / "grey_alpha.png")
    (men / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    random_image(2004).save(men / ".hidden.jpg")
    (women / ".cache").mkdir()
    random_image(2005).save(women / ".cache" / "thumb.jpg")
    (women / "notes.md").write_text("where these came from")
    (men / "broken.jpg").symlink_to("nowhere.jpg")
    (men / "loop.jpg").symlink_to("loop.jpg")
    (women / "back_up").symlink_to("..")
    os.mkfifo(men / "pipe.jpg")


def test_awkward_files_are_all_accounted_for(tmp_path, folders_dir):
    awkward_corpus(folders_dir)
    # Every entry a user sees in the folder; hidden folders count as one entry (they are listed, not read).
    entries = set()
    for folder, dirs, files in os.walk(folders_dir):
        entries |= {os.path.join(folder, name) for name in files}
        entries |= {os.path.join(folder, name) for name in dirs if name.startswith(".") or os.path.islink(os.path.join(folder, name))}
        dirs[:] = [name for name in dirs if not name.startswith(".")]
    out = prepared(tmp_path, f"folders={folders_dir}")
    kept = {r["source_path"] for split in metadata(out).values() for r in split}
    lost = {d["source_path"]: (d["stage"], d["reason"]) for d in dropped(out)}
    report = json.loads((out / "report.json").read_text())
    ignored = {i["path"]: i["reason"] for i in report["ignored"]}
    assert kept | set(lost) | set(ignored) == entries
    assert not kept & set(lost) and not (kept | set(lost)) & set(ignored)
    assert {Path(p).name for p in kept} >= {"cmyk.jpg", "grey16.png", "palette.png", "grey_alpha.png"}
    by_name = {Path(p).name: reason for p, reason in {**{p: r for p, (_, r) in lost.items()}, **ignored}.items()}
    assert by_name["broken.jpg"].startswith("broken symbolic link") and lost[str(folders_dir / "men" / "broken.jpg")][0] == "file"
    assert by_name["loop.jpg"] == "symbolic link loop"
    assert by_name["pipe.jpg"].startswith("not a regular file")
    assert "corrupt" in by_name["corrupt.jpg"] or "not an image" in by_name["corrupt.jpg"]
    assert (by_name[".hidden.jpg"], by_name[".cache"]) == ("hidden file", "hidden folder (not read)")
    assert by_name["back_up"].startswith("link to a folder that is already read")
    assert by_name["notes.md"].startswith("annotation")
    assert report["inputs"] == len(kept) + len(lost)
