"""Shared fixtures: tiny generated face-like images, so no test needs ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def random_image(seed: int, size: int = 48, tint: int | None = None) -> Image.Image:
    """A distinct random RGB image; `tint` (0/1) brightens one channel so labels are learnable."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray((rng.random((6, 6, 3)) * 255).astype(np.uint8))
    pixels = np.array(coarse.resize((size, size), Image.Resampling.BICUBIC))  # smooth, like a photo
    if tint is not None:
        pixels[:, :, tint] = 220
    return Image.fromarray(pixels)


@pytest.fixture
def utkface_dir(tmp_path: Path) -> Path:
    """40 UTKFace-named images with ages spread over the groups, genders alternating."""
    root = tmp_path / "utk"
    root.mkdir()
    for i in range(40):
        age, gender = [1, 5, 15, 25, 35, 45, 55, 65, 80, 22][i % 10], i % 2
        random_image(i, tint=gender).save(root / f"{age}_{gender}_{i % 5}_20170101000000{i:03d}.jpg.chip.jpg")
    return root


@pytest.fixture
def folders_dir(tmp_path: Path) -> Path:
    """A folder-per-class source: men/ and women/, 10 images each."""
    root = tmp_path / "mw"
    for gender, folder in enumerate(["men", "women"]):
        (root / folder).mkdir(parents=True)
        for i in range(10):
            random_image(1000 + gender * 100 + i).save(root / folder / f"{folder}{i:03d}.jpg")
    return root


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A tiny random timm model with the 18 joint labels, as a model folder (torch weights, no ONNX file)."""
    import torch

    from genderage.labels import JOINT_LABELS
    from genderage.training.modeling import build_timm_model, save_model

    folder = tmp_path_factory.mktemp("tiny_model")
    torch.manual_seed(0)
    save_model(*build_timm_model("test_efficientnet", JOINT_LABELS, 32), folder)
    return str(folder)


def recipe_classes(recipe: Path) -> tuple:
    """The argument classes a recipe is read into: convert_dlib.py's recipes name a teacher, train.py's a model."""
    import yaml

    from genderage.training import config, distillation

    return distillation.ARGUMENT_CLASSES if "teacher" in yaml.safe_load(recipe.read_text()) else config.ARGUMENT_CLASSES


def prepared(tmp_path: Path, *sources: str, extra: list[str] | None = None) -> Path:
    """Run prepare_dataset.py's main on `sources`; return the output folder."""
    import prepare_dataset

    out = tmp_path / "prepared"
    args = [a for s in sources for a in ("--source", s)] + ["--output", str(out), "--workers", "1"] + (extra or [])
    assert prepare_dataset.main(args) == 0
    return out
