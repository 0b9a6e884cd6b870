"""Bulk prediction for photo collections: every face of every photo -> one JSONL or CSV row.

Worker processes each load the detector and the classifier once (one torch / ONNX Runtime thread each, so N
workers use N cores); photos go to them in chunks, each chunk's faces are classified in one batch. Rows of a
photo are written together and flushed, so `resume=True` can skip every photo already in the output.
A photo with no face, or a file that is not a usable photo, gets one row with the reason; nothing stops the run.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..labels import AGE_GROUPS, GENDERS

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
LIST_SUFFIXES = {".txt", ".lst", ".list"}
NO_FACE_REASON = "no face found"
TOO_SMALL_REASON = "too small to contain a face"
CSV_COLUMNS = (["file", "face", "x0", "y0", "x1", "y1", "detector_confidence"] + [f"p_{g}" for g in GENDERS]
               + [f"p_{a}" for a in AGE_GROUPS] + ["age", "reason"])


class NoPhotosError(ValueError):
    """An input that names nothing to work on: a missing path, a folder or glob without photos, an empty list."""


def list_photos(inputs: list[str]) -> list[str]:
    """Expand folders (image files, recursively), globs and list files (one path per line, relative to the list's
    folder) into photo paths, in order, without repeats. A named file that is not an image is kept: it gets a row.
    A path that does not exist, or a folder, glob or list with no photos, is a NoPhotosError naming it."""
    paths: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise NoPhotosError(f"no photos in folder {item} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            lines = [line.strip() for line in path.read_text().splitlines()]
            found = [str(path.parent / line) if not Path(line).is_absolute() else line for line in lines if line and not line.startswith("#")]
            if not found:
                raise NoPhotosError(f"the list {item} names no photos")
        elif path.exists():
            found = [item]  # a single file (one that is not a photo gets a row saying so)
        elif glob.has_magic(item):
            found = sorted(p for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not found:
                raise NoPhotosError(f"no files match {item}")
        else:
            raise NoPhotosError(f"no such file or folder: {item}")
        paths += found
    return list(dict.fromkeys(paths))


class PhotoRejected(ValueError):
    """A listed file that is not a usable photo; it keeps its row with this reason."""


def open_photo(file: str, content: bytes | None = None):
    """A photo as upright RGB (read from `file`, or decoded from `content`, its bytes, when given), or PhotoRejected
    with a reason worded for the command line."""
    from ..data.images import ImageRejected, open_rgb
    from .analysis import MAX_UPLOAD_PIXELS

    if content is None and not Path(file).is_file():
        raise PhotoRejected("file not found (moved or deleted during the run?)")
    try:
        image, _ = open_rgb(file if content is None else content, max_pixels=MAX_UPLOAD_PIXELS)
    except ImageRejected as error:
        raise PhotoRejected(f"not a usable photo: {error}") from None
    except OSError as error:
        raise PhotoRejected(f"cannot be read: {error.strerror or error}") from None
    return image



def output_format(output: str | Path) -> str:
    suffix = Path(output).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ValueError(f"--output must end in .jsonl or .csv, not {suffix or 'nothing'!r}")


def done_files(output: str | Path) -> set[str]:
    """Files that already have rows in `output`; an unfinished last line (an interrupted write) is cut off."""
    output = Path(output)
    if not output.is_file() or output.stat().st_size == 0:
        return set()
    data = output.read_bytes()
    if not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        output.write_bytes(data)
    text = data.decode()
    if output_format(output) == "csv":
        return {row["file"] for row in csv.DictReader(text.splitlines())}
    return {json.loads(line)["file"] for line in text.splitlines() if line.strip()}


def _round(probabilities: dict[str, float] | None) -> dict[str, float] | None:
    return None if probabilities is None else {k: round(v, 4) for k, v in probabilities.items()}


def _row(file: str, face: int | None = None, box=None, confidence=None, prediction=None, reason: str | None = None,
         joint: list[str] | None = None) -> dict:
    row = {"file": file, "face": face, "box": None if box is None else [int(v) for v in box],
            "detector_confidence": None if confidence is None else round(float(confidence), 4),
            "gender": _round(prediction.gender) if prediction else None, "age_group": _round(prediction.age_group) if prediction else None,
            "age": round(prediction.age, 1) if prediction and prediction.age is not None else None, "reason": reason}
    if joint is not None:  # every joint label's probability, in `joint`'s order (the audit's gender × age table)
        row["joint"] = [round(prediction.labels[name], 4) for name in joint] if prediction else None
    return row


def csv_row(row: dict) -> dict:
    """The flat CSV form of a row: box corners and one probability per class in their own columns."""
    flat = {"file": row["file"], "face": row["face"], "detector_confidence": row["detector_confidence"], "age": row["age"], "reason": row["reason"]}
    flat.update(zip(["x0", "y0", "x1", "y1"], row["box"] or [None] * 4))
    for key in ("gender", "age_group"):
        flat.update({f"p_{k}": v for k, v in (row[key] or {}).items()})
    return {k: "" if flat.get(k) is None else flat[k] for k in CSV_COLUMNS}


class PhotoPredictor:
    """The detector and the classifier of one process; turns a chunk of photo paths into rows."""

    def __init__(self, model: str, backend: str = "auto", flip: bool = False, threads: int | None = None, joint: bool = False):
        from ..labels import JOINT_LABELS
        from .faces import FaceDetector
        from .inference import GenderAgeClassifier

        self.classifier = GenderAgeClassifier.from_pretrained(model, backend=backend, threads=threads)
        self.detector = FaceDetector(threads=threads, chip=self.classifier.face_chip)
        self.flip = flip
        self.joint = JOINT_LABELS if joint else None

    def rows(self, files: list[str], contents: list[bytes | None] | None = None) -> list[list[dict]]:
        """Rows per file: detection photo by photo, then one classification batch for all the chunk's faces.
        `contents` gives photos' bytes where they are not files (a dataset's images); None reads the files."""
        per_file: list[list[dict]] = []
        pending = []  # (file index, face number, face)
        for index, file in enumerate(files):
            try:
                image = open_photo(file, contents[index] if contents else None)
                if self.detector.too_small(image):
                    per_file.append([_row(file, reason=TOO_SMALL_REASON)])
                    continue
                faces = self.detector.detect(image)
            except PhotoRejected as error:
                per_file.append([_row(file, reason=str(error))])
                continue
            except Exception as error:  # noqa: BLE001 - one odd photo must never stop a collection
                per_file.append([_row(file, reason=f"failed: {type(error).__name__}: {error}")])
                continue
            per_file.append([] if faces else [_row(file, reason=NO_FACE_REASON)])
            pending += [(index, number, face) for number, face in enumerate(faces)]
        predictions = self.classifier.predict([face.crop for _, _, face in pending], self.flip) if pending else []
        for (index, number, face), prediction in zip(pending, predictions):
            per_file[index].append(_row(files[index], number, face.box, face.confidence, prediction, joint=self.joint))
        return per_file


class WorkerDied(RuntimeError):
    """A worker process ended without finishing its photos (killed, or out of memory)."""


_worker: PhotoPredictor | None = None


def _init_worker(model: str, backend: str, flip: bool, joint: bool) -> None:
    global _worker
    # One core per worker: N workers fill N cores without oversubscription (torch, where it runs, reads this too).
    os.environ["OMP_NUM_THREADS"] = "1"
    _worker = PhotoPredictor(model, backend, flip, threads=1, joint=joint)


def _work(chunk: tuple[list[str], list[bytes | None] | None]) -> tuple[list[str], list[list[dict]]]:
    files, contents = chunk
    return files, _worker.rows(files, contents)


def predict_chunks(chunks: Iterable[tuple[list[str], list[bytes | None] | None]], model: str, workers: int = 1,
                   backend: str = "auto", flip: bool = False, joint: bool = False) -> Iterator[tuple[list[str], list[list[dict]]]]:
    """(files, rows per file) for each chunk of (files, their bytes or None), in order.

    workers > 1 runs that many spawned processes with a bounded queue of chunks (memory stays flat on any collection);
    workers == 1 runs here, with the backends' own thread settings. A worker that dies raises WorkerDied: what was
    already yielded stands, and a rerun with resume picks up from there."""
    if workers <= 1:
        predictor = PhotoPredictor(model, backend, flip, joint=joint)
        for files, contents in chunks:
            yield files, predictor.rows(files, contents)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from .inference import GenderAgeClassifier

    # Loaded here once first: a model that cannot load is one clear error, not a pool of failing workers.
    GenderAgeClassifier.from_pretrained(model, backend=backend, threads=1)
    # spawn, not fork: a forked copy of a process with live thread pools can deadlock
    with ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"), _init_worker, (model, backend, flip, joint)) as pool:
        pending: deque = deque()
        chunks = iter(chunks)
        try:
            while True:
                while len(pending) < 2 * workers and (chunk := next(chunks, None)) is not None:
                    pending.append(pool.submit(_work, chunk))
                if not pending:
                    return
                yield pending.popleft().result()
        except BrokenProcessPool:
            raise WorkerDied("a worker process died (killed, or out of memory); rerun with --resume to go on from the "
                             "photos already written") from None
        finally:
            for future in pending:
                future.cancel()


def predict_photos(inputs: list[str], output: str | Path, model: str, workers: int = 1, resume: bool = False, flip: bool = False,
                   chunk: int = 16, backend: str = "auto", progress: bool = True) -> dict:
    """Write one row per face (or per faceless / bad photo) of every photo in `inputs` to `output` (.jsonl or .csv).

    workers > 1 runs that many processes; workers == 1 runs here, with torch's own thread settings.
    Returns counts: photos written, faces, photos without a face, bad files, photos skipped by `resume`, seconds.
    """
    from tqdm import tqdm

    from ..cli import ensure_output_file
    from .inference import check_model

    kind = output_format(output)
    files = list_photos(inputs)
    check_model(model)
    ensure_output_file(output)
    done = done_files(output) if resume else set()
    todo = [f for f in files if f not in done]
    chunks = [todo[i : i + chunk] for i in range(0, len(todo), chunk)]
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    counts = {"photos": 0, "faces": 0, "no_face": 0, "bad": 0, "skipped": len(files) - len(todo)}
    start = time.perf_counter()
    with open(output, "a" if resume else "w", newline="") as handle, tqdm(total=len(todo), unit="photo", disable=not progress, file=sys.stderr) as bar:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS) if kind == "csv" else None
        if writer and handle.tell() == 0:
            writer.writeheader()
        if chunks:
            results = predict_chunks([(files_, None) for files_ in chunks], model, min(workers, len(chunks)), backend, flip)
            for chunk_files, per_file in results:
                for rows in per_file:
                    if writer is None:
                        handle.write("".join(json.dumps(row) + "\n" for row in rows))  # a photo's rows land together
                    else:
                        writer.writerows(csv_row(row) for row in rows)
                    counts["photos"] += 1
                    counts["faces"] += sum(row["face"] is not None for row in rows)
                    reason = rows[0]["reason"]
                    counts["no_face" if reason in (NO_FACE_REASON, TOO_SMALL_REASON) else "bad"] += reason is not None
                handle.flush()
                bar.update(len(chunk_files))
    counts["seconds"] = round(time.perf_counter() - start, 2)
    return counts
