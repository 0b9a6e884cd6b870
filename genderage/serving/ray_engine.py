"""Bulk prediction on Ray Data: the same PhotoPredictor (detector and ONNX Runtime classifier) in an actor pool.

Each actor loads the model once and takes batches of photos; a batch's faces are classified together, across photos,
as the local worker processes do, so both engines give the same rows. Ray restarts an actor that dies and retries its
batch (Ray Data's defaults for actor pools); the caller keys rows by position, so a retried batch can neither lose nor
duplicate a photo. Runs on a local Ray runtime started for the job, or on a running cluster (`address`), whose
workers must see the same photo paths (shared storage) and have genderage installed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator

import numpy as np


class _PredictorActor:
    settings: tuple = ()  # (model, backend, flip, joint), set on a subclass: no constructor arguments in the object store

    def __init__(self):
        os.environ["OMP_NUM_THREADS"] = "1"  # one core per actor, as the local workers
        from .predict import PhotoPredictor

        model, backend, flip, joint = self.settings
        self.predictor = PhotoPredictor(model, backend, flip, threads=1, joint=joint)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        contents = [c if c else None for c in batch["content"]]
        per_photo = self.predictor.rows([str(photo) for photo in batch["photo"]], contents if any(contents) else None)
        return {"position": batch["position"], "rows": np.array([json.dumps(rows) for rows in per_photo], dtype=object)}


def start_ray(address: str | None, workers: int) -> None:
    """Join the cluster at `address`, or start a local runtime with `workers` CPUs for this job (quietly)."""
    import logging

    import ray

    if ray.is_initialized():
        return
    # Ray's C++ core logs a notice per actor pool ("constructor arguments in the object store"): errors still raise.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the audit's own bar counts photos; Ray's would print beside it
    context.print_on_execution_start = False


def predict_on_ray(items: Iterable[tuple[int, str, bytes | None]], model: str, workers: int = 1, backend: str = "auto",
                   flip: bool = False, joint: bool = False, chunk: int = 16, address: str | None = None
                   ) -> Iterator[tuple[int, list[dict]]]:
    """(position, rows) per photo of `items` (position, photo path or id, its bytes or None), as the actors finish."""
    import ray.data

    start_ray(address, workers)
    records = [{"position": position, "photo": photo, "content": content or b""} for position, photo, content in items]
    if not records:
        return
    # At least 4 blocks a worker keeps every actor busy to the end; a block of many batches keeps the scheduling light.
    blocks = min(len(records), max(4 * workers, min(len(records) // (4 * chunk), 10_000)))
    predictor = type("PhotoPredictorActor", (_PredictorActor,), {"settings": (model, backend, flip, joint)})
    answered = ray.data.from_items(records, override_num_blocks=blocks).map_batches(predictor, batch_size=chunk,
                                   compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1, batch_format="numpy")
    for batch in answered.iter_batches(batch_size=None, batch_format="numpy"):
        for position, rows in zip(batch["position"], batch["rows"]):
            yield int(position), json.loads(rows)
