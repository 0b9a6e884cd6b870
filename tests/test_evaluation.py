"""metrics.json comes from an fp32 evaluation even when the model trained under bf16 autocast."""

import json

import evaluate
import numpy as np
import pytest
import torch
from test_training import data_dir, train  # noqa: F401  (the module-scoped prepared dataset)
from transformers import AutoImageProcessor, AutoModelForImageClassification

from genderage import METRIC_MODULE
from genderage.data.imagefolder import load_prepared
from genderage.training.evaluation import compute_metrics_with_slices, softmax
from genderage.training.trainer import SLICE_COLUMNS


def evaluate_saved_model(model_dir, data_dir, autocast: bool) -> dict:  # noqa: F811
    """The test split through the saved folder (processor + model), in fp32 or under bf16 autocast."""
    model = AutoModelForImageClassification.from_pretrained(model_dir).eval()
    processor = AutoImageProcessor.from_pretrained(model_dir)
    test = load_prepared(data_dir)["test"]
    pixels = processor([image.convert("RGB") for image in test["image"]], return_tensors="pt")["pixel_values"]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = model(pixel_values=pixels).logits.float().numpy()
    labels = np.array(test["gender"]) * 9 + np.array(test["age_group"])
    slices = {c: [test.features[c].names[v] if hasattr(test.features[c], "names") else v for v in test[c]] for c in SLICE_COLUMNS}
    metric = evaluate.load(METRIC_MODULE)
    return compute_metrics_with_slices(metric, softmax(logits), labels, "gender_age", test["age"], slices)["metrics"]


def test_metrics_json_is_the_fp32_evaluation_of_a_bf16_run(data_dir, tmp_path):  # noqa: F811
    # A high learning rate gives logits large enough that bf16 rounding shows in the metrics (with near-zero
    # logits, a run whose weights happened to stay small, bf16 and fp32 agreed to 7e-7 and the test could not fail).
    returned = train(data_dir, tmp_path, "--bf16", "true", "--num_train_epochs", "2", "--learning_rate", "0.01")
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written == returned
    fp32 = evaluate_saved_model(tmp_path, data_dir, autocast=False)
    bf16 = evaluate_saved_model(tmp_path, data_dir, autocast=True)
    assert max(abs(bf16[name] - fp32[name]) for name in fp32) > 1e-4  # the two precisions are distinguishable here
    assert written["test"] == pytest.approx(fp32, abs=1e-6)
