"""The numpy preprocessing gives the image processor's own pixels, so ONNX Runtime answers equal pipeline's."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import random_image
from genderage.serving.preprocess import NumpyPreprocessor


@pytest.fixture(scope="module")
def timm_processor(tmp_path_factory):
    from transformers import AutoImageProcessor

    from genderage.labels import JOINT_LABELS
    from genderage.training.modeling import build_timm_model, save_model

    folder = tmp_path_factory.mktemp("model")
    save_model(*build_timm_model("test_efficientnet", JOINT_LABELS, 40), folder)
    processor = AutoImageProcessor.from_pretrained(folder)
    processor.folder = folder
    return processor


def folder_preprocessor(folder) -> NumpyPreprocessor | None:
    """What the light install reads: the folder's JSON files only."""
    return NumpyPreprocessor.from_config(json.loads((folder / "preprocessor_config.json").read_text()),
                                         json.loads((folder / "config.json").read_text()))


@pytest.mark.parametrize("size", [(200, 200), (40, 40), (31, 57), (300, 120), (17, 300), (1, 1)])
def test_timm_transform_in_numpy_equals_the_processor(timm_processor, size):
    fast = NumpyPreprocessor.from_processor(timm_processor)
    assert fast is not None and fast.shorter_side == 42 and fast.crop == (40, 40)  # crop_pct 0.95: resize, then crop
    images = [random_image(seed, size=size[0]).resize(size) for seed in range(2)]
    expected = timm_processor(images, return_tensors="pt")["pixel_values"].numpy()
    np.testing.assert_allclose(fast(images), expected, atol=1e-6)


def test_shipped_model_processor_is_taken_over():
    from transformers import AutoImageProcessor

    from conftest import REPO

    processor = AutoImageProcessor.from_pretrained(REPO / "models" / "default")
    fast = NumpyPreprocessor.from_processor(processor)
    image = Image.new("RGB", (203, 197), (10, 200, 90))
    np.testing.assert_allclose(fast([image]), processor([image], return_tensors="pt")["pixel_values"].numpy(), atol=1e-6)


@pytest.mark.parametrize("size", [(200, 200), (48, 48), (300, 120), (17, 300), (31, 57), (1, 1)])
def test_fixed_size_resize_in_numpy_equals_the_processor(size):
    """ViTImageProcessor (the face-pretrained ResNet's) resizes with torchvision, which rounds a few pixels
    differently from PIL: at most one grey level, on well under 1% of the values."""
    from transformers import ViTImageProcessor

    processor = ViTImageProcessor(size={"height": 48, "width": 48}, image_mean=[0.48, 0.46, 0.41], image_std=[1.004] * 3)
    fast = NumpyPreprocessor.from_processor(processor)
    assert fast is not None and fast.crop == (48, 48)
    images = [random_image(seed, size=size[0]).resize(size) for seed in range(2)]
    expected = processor(images, return_tensors="np")["pixel_values"]
    difference = np.abs(fast(images) - expected)
    assert difference.max() <= 1 / 255 / 1.004 + 1e-6 and (difference > 1e-6).mean() < 0.01


def test_unknown_transforms_are_left_to_the_processor():
    from transformers import ConvNextImageProcessor, ViTImageProcessor

    assert NumpyPreprocessor.from_processor(ConvNextImageProcessor(size={"shortest_edge": 48}, crop_pct=0.875)) is None
    assert NumpyPreprocessor.from_processor(ViTImageProcessor(size={"height": 48, "width": 48}, do_normalize=False)) is None


def test_the_folder_files_give_the_processor_steps_without_transformers(timm_processor):
    """from_config (no transformers, no timm) builds the same preprocessing as the loaded processor, for a timm model
    and for the shipped face-pretrained ResNet."""
    from transformers import AutoImageProcessor

    from conftest import REPO

    shipped = REPO / "models" / "default"
    images = [random_image(seed, size=90).resize((90, 70)) for seed in range(2)]
    for folder, processor in ((timm_processor.folder, timm_processor), (shipped, AutoImageProcessor.from_pretrained(shipped))):
        light, full = folder_preprocessor(folder), NumpyPreprocessor.from_processor(processor)
        assert light is not None and (light.resample, light.shorter_side, light.crop) == (full.resample, full.shorter_side, full.crop)
        np.testing.assert_allclose(light(images), full(images), atol=1e-6)  # mean and std equal up to float32 rounding


def test_unknown_processor_files_are_not_guessed():
    assert NumpyPreprocessor.from_config({"image_processor_type": "ConvNextImageProcessor"}) is None
    assert NumpyPreprocessor.from_config({"image_processor_type": "ViTImageProcessor", "do_normalize": False,
                                          "size": {"height": 48, "width": 48}}) is None
    squash = {"image_processor_type": "TimmWrapperImageProcessor", "pretrained_cfg": {"input_size": [3, 40, 40], "crop_mode": "squash"}}
    assert NumpyPreprocessor.from_config(squash) is None
