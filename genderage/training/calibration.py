"""Confidence that means something: expected calibration error, and temperature scaling saved inside the model.

Temperature scaling divides the logits by one scalar T fitted on validation data (T > 1 softens an
over-confident model). Dividing the final linear layer's weight and bias by T gives exactly logits / T,
so the calibrated model is still a plain classifier: `pipeline`, ONNX export and the app need no extra code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

ECE_BINS = 15


def expected_calibration_error(probabilities: np.ndarray, references: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the top-class confidence: bin-size-weighted |accuracy - mean confidence| over equal-width bins."""
    probabilities, references = np.asarray(probabilities, dtype=np.float64), np.asarray(references)
    if len(references) == 0:
        return float("nan")
    confidence, correct = probabilities.max(1), probabilities.argmax(1) == references
    # Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 joins the first bin.
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def fit_temperature(logits: np.ndarray, references: np.ndarray, max_iter: int = 100, class_bias: bool = False):
    """The scalar T minimising the NLL of softmax(logits / T) (LBFGS on log T, so T stays positive). Partly labelled
    rows of the joint task (targets after the 18 classes) count by their marginal likelihood.

    With `class_bias`, one bias per class is fitted too (bias-corrected temperature scaling, Alexandari et al. 2020):
    it undoes the class prior that balanced or boosted sampling taught, towards the fitting split's own shares.
    Returns T, or (T, biases) with `class_bias`."""
    import torch

    from .losses import partial_nll, target_sets

    logits_t = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    labels_t = torch.as_tensor(np.asarray(references), dtype=torch.long)
    sets = target_sets(logits_t.shape[1])
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(logits_t.shape[1], dtype=torch.float64, requires_grad=class_bias)
    optimiser = torch.optim.LBFGS([log_t, bias] if class_bias else [log_t], lr=0.5, max_iter=max_iter,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = partial_nll(logits_t / log_t.exp() + bias, labels_t, sets).mean()
        loss.backward()
        return loss

    optimiser.step(closure)
    temperature = float(log_t.detach().exp())
    return (temperature, bias.detach().numpy() - bias.detach().numpy().mean()) if class_bias else temperature


def classifier_head(model) -> "torch.nn.Linear":
    """The final linear layer: timm's own classifier for timm-wrapped models, else the last Linear under `classifier`."""
    import torch

    if hasattr(model, "timm_model"):
        head = model.timm_model.get_classifier()
    else:
        linears = [m for name, m in model.named_modules() if name.split(".")[0] == "classifier" and isinstance(m, torch.nn.Linear)]
        head = linears[-1] if linears else None
    if not isinstance(head, torch.nn.Linear):
        raise ValueError(f"no final nn.Linear classifier found in {type(model).__name__}; cannot fold a temperature into it")
    return head


def fold_temperature(model, temperature: float, class_bias: np.ndarray | None = None) -> None:
    """Make the model output logits / T (+ one bias per class) by changing its head, and record the total temperature
    in its config."""
    import torch

    head = classifier_head(model)
    with torch.no_grad():
        head.weight.div_(temperature)
        if head.bias is not None:
            head.bias.div_(temperature)
            if class_bias is not None:
                head.bias.add_(torch.as_tensor(class_bias, dtype=head.bias.dtype))
    # A model calibrated twice has been divided by both temperatures: record their product.
    model.config.calibration_temperature = getattr(model.config, "calibration_temperature", 1.0) * temperature


def joint_logits(model, processor, images: list, batch_size: int = 64) -> np.ndarray:
    """The model's raw logits (fp32, eval preprocessing) for a list of PIL images."""
    import torch

    rows = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = [image.convert("RGB") for image in images[start : start + batch_size]]
            pixels = processor(batch, return_tensors="pt")["pixel_values"]
            rows.append(model(pixel_values=pixels).logits.float().numpy())
    return np.concatenate(rows) if rows else np.zeros((0, model.config.num_labels))


def label_indices(rows: list[dict], label_names: list[str]) -> np.ndarray:
    """Each row's target among the model's labels: for the 18 joint labels `genderage.labels.joint_target` (a gender or
    an age group alone included), else the gender's or age group's index; -1 if the row has no usable label."""
    from ..labels import AGE_GROUPS, GENDERS, JOINT_LABELS, joint_target

    if label_names == JOINT_LABELS:
        targets = [joint_target(None if row["gender"] is None else GENDERS.index(row["gender"]),
                                None if row["age_group"] is None else AGE_GROUPS.index(row["age_group"])) for row in rows]
        return np.array([-1 if target is None else target for target in targets], dtype=np.int64)
    lookup = {name: i for i, name in enumerate(label_names)}
    return np.array([lookup.get(row["gender"], lookup.get(row["age_group"], -1)) for row in rows])


def marginal_eces(probabilities: np.ndarray, rows: list[dict], label_names: list[str]) -> dict[str, float]:
    """Gender and age-group ECE of the marginal probabilities (summed joint ones), where each label is known."""
    from ..labels import AGE_GROUPS, GENDERS, marginals

    predictions = marginals(probabilities, label_names)
    result = {}
    for key, names in (("gender", GENDERS), ("age_group", AGE_GROUPS)):
        keep = [i for i, row in enumerate(rows) if row[key] is not None and getattr(predictions[i], key) is not None]
        if keep:
            marginal = np.array([[getattr(predictions[i], key)[n] for n in names] for i in keep])
            result[f"{key}_ece"] = expected_calibration_error(marginal, np.array([names.index(rows[i][key]) for i in keep]))
    return result


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(1, keepdims=True))
    return shifted / shifted.sum(1, keepdims=True)


def calibrate_model_folder(model_dir: str | Path, data_dir: str | Path, split: str = "validation",
                           output_dir: str | Path | None = None, limit: int | None = None, class_bias: bool = False) -> dict:
    """Fit T on a prepared split, fold it into the head and save the model (in place by default).

    Returns {"temperature", "total_temperature", "images", "before": {ECEs, nll}, "after": {...}}.
    """
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from ..data.labelled import from_prepared
    from .losses import target_sets
    from .modeling import save_model

    model_dir = Path(model_dir)
    output_dir = Path(output_dir) if output_dir else model_dir
    model = AutoModelForImageClassification.from_pretrained(model_dir, dtype=torch.float32)
    processor = AutoImageProcessor.from_pretrained(model_dir)
    label_names = [model.config.id2label[i] for i in range(model.config.num_labels)]

    data = from_prepared(str(data_dir), split, limit)
    references = label_indices(data.rows, label_names)
    known = references >= 0
    logits = joint_logits(model, processor, data.images)
    fitted = fit_temperature(logits[known], references[known], class_bias=class_bias)
    temperature, bias = fitted if class_bias else (fitted, np.zeros(logits.shape[1]))
    allowed = target_sets(len(label_names)).numpy()[references[known]]

    def summary(scaled: np.ndarray) -> dict:
        probabilities = _softmax(scaled)
        nll = -np.log((probabilities[known] * allowed).sum(1) + 1e-12).mean()
        return {**marginal_eces(probabilities, data.rows, label_names), "nll": float(nll)}

    before, after = summary(logits), summary(logits / temperature + bias)
    fold_temperature(model, temperature, bias if class_bias else None)
    model.config.calibration = {"split": split, "images": int(known.sum()), "ece_bins": ECE_BINS,
                                "before": before, "after": after}
    if class_bias:
        model.config.calibration["class_bias"] = {name: round(float(b), 4) for name, b in zip(label_names, bias)}
    if output_dir != model_dir:  # keep the card, metrics and plots beside the calibrated weights
        shutil.copytree(model_dir, output_dir, dirs_exist_ok=True)
    save_model(model, processor, output_dir)
    return {"temperature": temperature, "total_temperature": model.config.calibration_temperature,
            "images": int(known.sum()), "before": before, "after": after,
            **({"class_bias": model.config.calibration["class_bias"]} if class_bias else {})}


def read_calibration(model_dir: str | Path) -> dict | None:
    """The calibration a model folder's config.json records, or None if it was never calibrated."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    if "calibration_temperature" not in config:
        return None
    return {"temperature": config["calibration_temperature"], **(config.get("calibration") or {})}
