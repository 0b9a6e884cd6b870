"""Inference on face crops: batched, optional flip test-time augmentation, marginal gender and age-group probabilities.

Two backends behind one interface: ONNX Runtime (when it is installed and the model folder has `model.onnx`,
written by training or `export_onnx.py`, fp32 or int8) and PyTorch. Preprocessing is the saved image processor's
either way, so an fp32 export's answers match `transformers.pipeline`.

The ONNX Runtime path needs neither torch nor transformers (requirements-serve.txt): labels come from the folder's
config.json, the preprocessing from its preprocessor_config.json (`NumpyPreprocessor.from_config`), and the
calibration temperature is already folded into the exported weights.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..labels import Prediction, marginals
from ..model_files import FINGERPRINT_KEY, ONNX_FILE, weights_fingerprint
from .preprocess import NumpyPreprocessor

DEFAULT_MODEL = str(Path(__file__).resolve().parents[2] / "models" / "default")


class ModelNotServableError(OSError):
    """A model that this install cannot run (no up-to-date model.onnx, and no PyTorch); the message says what to do."""


class ModelNotFoundError(ModelNotServableError):
    """No model folder at a local path, or a Hub id that cannot be had (offline, or no such repo)."""


HUB_TIMEOUT_S = 5.0  # one look at the Hub, not transformers' minutes of retries when there is no network


def looks_local(path_or_id: str) -> bool:
    """A path rather than a Hub id ("user/name" or "name"): absolute, relative with ./ or ~, deeper than one slash, or
    starting with a folder that exists here (models/defualt)."""
    parts = path_or_id.replace("\\", "/").split("/")
    return (Path(path_or_id).is_absolute() or path_or_id.startswith((".", "~")) or len(parts) > 2 or path_or_id.endswith("/")
            or (len(parts) == 2 and Path(parts[0]).is_dir()))


def check_model(path_or_id: str) -> None:
    """Fail at once, in one line, for a model that cannot be had: a local folder that is not there (with the nearest
    name), a folder without config.json, a Hub id the Hub does not have or cannot be reached for (and not cached)."""
    from ..cli import did_you_mean

    path = Path(path_or_id).expanduser()
    if path.is_file():
        raise ModelNotFoundError(f"{path_or_id} is a file; --model takes a model folder (with config.json) or a Hub id")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path_or_id} is not a model folder (no config.json)")
        return
    if looks_local(path_or_id):
        parent = path.parent if path.parent.is_dir() else Path(".")
        siblings = [str(p) for p in parent.iterdir() if (p / "config.json").is_file()] if parent.is_dir() else []
        default = os.path.relpath(DEFAULT_MODEL)
        raise ModelNotFoundError(f"no model folder at {path_or_id}{did_you_mean(str(path), siblings + [default]) or f' (the shipped one is {default})'}")
    _check_hub_model(path_or_id)


def _check_hub_model(repo_id: str) -> None:
    try:
        from huggingface_hub import HfApi, try_to_load_from_cache
        from huggingface_hub.errors import RepositoryNotFoundError
    except ImportError:
        raise ModelNotFoundError(f"{repo_id} is no local folder, and huggingface_hub is not installed to fetch it") from None
    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return  # in the local cache: loads offline too
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise ModelNotFoundError(f"{repo_id} is not a local folder nor in the Hub cache, and HF_HUB_OFFLINE is set")
    try:
        HfApi().model_info(repo_id, timeout=HUB_TIMEOUT_S)
    except RepositoryNotFoundError:
        raise ModelNotFoundError(f"no model folder at {repo_id}, and no model {repo_id} on the Hugging Face Hub") from None
    except Exception as error:  # noqa: BLE001 - no network, DNS, proxy, timeout: all mean "cannot fetch it now"
        raise ModelNotFoundError(f"{repo_id} is no local folder, and the Hugging Face Hub cannot be reached to fetch it "
                                 f"({type(error).__name__}); check the name or the network") from None


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def default_threads() -> int:
    """Threads for ONNX Runtime when none are asked for: torch's setting where torch is loaded (so
    `torch.set_num_threads` applies), else OMP_NUM_THREADS, else 0 (ONNX Runtime's own choice: one per core)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.get_num_threads()
    return int(os.environ.get("OMP_NUM_THREADS") or 0)


def onnx_session(model: str | Path | bytes, threads: int | None = None, batch_size: int | None = None):
    """An ONNX Runtime CPU session for a file or serialised model, on `threads` (default: `default_threads()`).
    `batch_size` fixes the "batch" axis: shapes then fold into constants (about 15% faster for one face at a time)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if batch_size:
        options.add_free_dimension_override_by_name("batch", batch_size)
    options.intra_op_num_threads = threads or default_threads()
    options.log_severity_level = 3  # errors only: not a line per unused BatchNorm counter in an exported file
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(model if isinstance(model, bytes) else str(model), options, providers=["CPUExecutionProvider"])


def is_stale(session, folder: str | Path) -> bool:
    """True when the ONNX file was exported from other weights than the folder holds now."""
    recorded = session.get_modelmeta().custom_metadata_map.get(FINGERPRINT_KEY)
    current = weights_fingerprint(folder) if Path(folder).is_dir() else None
    return bool(recorded and current and recorded != current)


def find_onnx(path_or_id: str) -> Path | None:
    """The model's ONNX file when ONNX Runtime is installed and the folder (or the Hub repo, if reachable) has one."""
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    return model_file(path_or_id, ONNX_FILE)


def model_file(path_or_id: str, name: str) -> Path | None:
    """One file of a model folder, or of a Hub repo (downloaded, when reachable); None where there is none."""
    if Path(path_or_id).is_dir():
        path = Path(path_or_id) / name
        return path if path.is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(path_or_id, name))
    except Exception:  # not installed, not on the Hub, offline, or a repo without the file
        return None


class GenderAgeClassifier:
    """A saved genderage model (any transformers image classifier with our label names) ready for inference.

    `session` (an ONNX Runtime session) replaces the PyTorch forward when given; `model` may then be None
    and is loaded from `path_or_id` only if someone asks for it.
    """

    def __init__(self, model, processor, device: str = "cpu", bf16: bool = False, session=None,
                 label_names: list[str] | None = None, path_or_id: str | None = None,
                 numpy_preprocessor: NumpyPreprocessor | None = None, face_chip: str | None = None):
        self._model = model
        if model is not None:
            import torch

            # channels_last is faster for these convolutional networks on CPUs and GPUs alike.
            self._model = model.eval().to(device, memory_format=torch.channels_last)
            label_names = [model.config.id2label[i] for i in range(model.config.num_labels)]
            face_chip = getattr(model.config, "face_chip", None)
        # How the model's training faces were cut (None: around the detector's box); FaceDetector(chip=...) cuts alike.
        self.face_chip = face_chip
        self.processor = processor
        # ONNX Runtime takes numpy: the processor's transform in numpy skips a torch round trip per call (same pixels).
        if numpy_preprocessor is None and session is not None:
            numpy_preprocessor = NumpyPreprocessor.from_processor(processor)
        self.numpy_preprocessor = numpy_preprocessor
        self.device = device
        self.bf16 = bf16  # bf16 autocast: about 2.5x faster on recent CPUs, probabilities differ by ~1e-2
        self.session = session
        self.single_session = session
        self.label_names = label_names
        self._path_or_id = path_or_id
        self.backend = "onnxruntime" if session is not None else "torch"

    @classmethod
    def from_pretrained(cls, path_or_id: str = DEFAULT_MODEL, device: str = "cpu", bf16: bool = False,
                        backend: str = "auto", threads: int | None = None) -> "GenderAgeClassifier":
        """Load a model folder or Hub id. backend: "auto" (ONNX Runtime if possible), "onnx" or "torch".

        "auto" picks ONNX Runtime only for fp32 on the CPU with an up-to-date model.onnx present; it needs no torch.
        threads: ONNX Runtime's threads (default: `default_threads()`).
        """
        check_model(path_or_id)
        onnx_path = None
        if backend == "onnx" or (backend == "auto" and device == "cpu" and not bf16):
            onnx_path = find_onnx(path_or_id)
            if onnx_path is None and backend == "onnx":
                raise ModelNotServableError(f"no {ONNX_FILE} for {path_or_id} (or onnxruntime is not installed); "
                                            f"run: python export_onnx.py {path_or_id}")
        if onnx_path is not None:
            session = onnx_session(onnx_path, threads)
            if not is_stale(session, path_or_id):
                classifier = cls._on_onnx_runtime(path_or_id, session)
                classifier.single_session = onnx_session(onnx_path, threads, batch_size=1)  # the app's usual call: one face
                return classifier
            message = f"{onnx_path} was exported from older weights; re-export it with: python export_onnx.py {path_or_id}"
            if backend == "onnx" or not torch_installed():
                raise ModelNotServableError(message)
            warnings.warn(message + " (using PyTorch meanwhile)", stacklevel=2)
        if not torch_installed():
            raise ModelNotServableError(
                f"{path_or_id} has no {ONNX_FILE}, and this install has no PyTorch to run it otherwise: export it with "
                f"`python export_onnx.py {path_or_id}` (in the full install), or install the full requirements (requirements.txt)"
                if Path(path_or_id).is_dir() else
                f"{path_or_id} on the Hub has no {ONNX_FILE}, and this install has no PyTorch to run it otherwise: "
                "install the full requirements (requirements.txt)")
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        processor = AutoImageProcessor.from_pretrained(path_or_id)
        model = AutoModelForImageClassification.from_pretrained(path_or_id, dtype=torch.float32)
        return cls(model, processor, device, bf16, path_or_id=path_or_id)

    @classmethod
    def _on_onnx_runtime(cls, path_or_id: str, session) -> "GenderAgeClassifier":
        """The classifier on ONNX Runtime: labels from config.json, preprocessing from preprocessor_config.json (numpy),
        or from transformers' image processor where the numpy version does not know its steps."""
        config_file, processor_file = model_file(path_or_id, "config.json"), model_file(path_or_id, "preprocessor_config.json")
        if config_file is None:
            raise ModelNotServableError(f"{path_or_id} has no config.json (its labels): not a model folder")
        config = json.loads(config_file.read_text())
        # transformers keeps the labels as id2label; a timm wrapper's config.json as label_names.
        names = [config["id2label"][str(i)] for i in range(len(config["id2label"]))] if "id2label" in config else config.get("label_names")
        if not names:
            raise ModelNotServableError(f"{path_or_id}: config.json names no labels (id2label or label_names)")
        preprocessing = json.loads(processor_file.read_text()) if processor_file else {}
        numpy_preprocessor = NumpyPreprocessor.from_config(preprocessing, config)
        processor = None
        if numpy_preprocessor is None:
            if importlib.util.find_spec("transformers") is None:
                raise ModelNotServableError(f"{path_or_id}: its image processor ({preprocessing.get('image_processor_type')}) "
                                            "needs transformers; install the full requirements (requirements.txt)")
            from transformers import AutoImageProcessor

            processor = AutoImageProcessor.from_pretrained(path_or_id)
        return cls(None, processor, "cpu", False, session, names, path_or_id, numpy_preprocessor, config.get("face_chip"))

    @property
    def model(self):
        """The PyTorch model (loaded on first use when the classifier runs on ONNX Runtime)."""
        if self._model is None:
            import torch
            from transformers import AutoModelForImageClassification

            model = AutoModelForImageClassification.from_pretrained(self._path_or_id, dtype=torch.float32)
            self._model = model.eval().to(self.device, memory_format=torch.channels_last)
        return self._model

    def probabilities(self, images: list[Image.Image], flip: bool = False, batch_size: int = 64) -> np.ndarray:
        """Softmax over the model's labels; with `flip`, averaged with the mirrored image's."""
        rows = []
        for start in range(0, len(images), batch_size):
            batch = [image.convert("RGB") for image in images[start : start + batch_size]]
            probabilities = self._forward(batch)
            if flip:
                probabilities = (probabilities + self._forward([ImageOps.mirror(image) for image in batch])) / 2
            rows.append(probabilities)
        return np.concatenate(rows) if rows else np.zeros((0, len(self.label_names)))

    def _forward(self, images: list[Image.Image]) -> np.ndarray:
        if self.session is not None:
            if self.numpy_preprocessor is not None:
                pixels = self.numpy_preprocessor(images)
            else:
                pixels = np.asarray(self.processor(images, return_tensors="np")["pixel_values"], dtype=np.float32)
            session = self.single_session if len(pixels) == 1 else self.session
            logits = session.run(["logits"], {"pixel_values": pixels})[0]
            shifted = np.exp(logits - logits.max(-1, keepdims=True))
            return shifted / shifted.sum(-1, keepdims=True)
        import torch

        pixels = self.processor(images, return_tensors="pt")["pixel_values"]
        pixels = pixels.to(self.device, memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(pixel_values=pixels).logits
        return logits.float().softmax(-1).cpu().numpy()

    def predict(self, images: list[Image.Image], flip: bool = False, batch_size: int = 64) -> list[Prediction]:
        return marginals(self.probabilities(images, flip, batch_size), self.label_names)
