"""Evaluation after training: per-split metrics with slices, metrics.json, a printed table, and plots."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..labels import AGE_GROUPS, GENDERS

PLOTS = {"curves": "training_curves.png", "confusion": "confusion_matrix.png", "age_groups": "accuracy_by_age_group.png"}


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def compute_metrics_with_slices(metric, probabilities, references, task, ages, slices: dict) -> dict:
    """Split the metric module's answer into flat numbers (`metrics`) and the rest (`details`)."""
    result = metric.compute(predictions=probabilities, references=references, task=task, ages=ages, slices=slices)
    numbers = {k: v for k, v in result.items() if isinstance(v, (int, float))}
    return {"metrics": numbers, "details": {k: v for k, v in result.items() if k not in numbers}}


def evaluate_split(trainer, dataset, metric, task: str, slice_columns: tuple[str, ...]) -> dict:
    """Predict one split with the Trainer in fp32 (whatever precision trained it) and compute every metric, per slice too."""
    with fp32_forward(trainer.model):
        output = trainer.predict(dataset)
    columns = dataset.with_format(None).select_columns(["age", *slice_columns])
    slices = {column: _slice_values(columns, column) for column in slice_columns}
    return compute_metrics_with_slices(metric, softmax(output.predictions), output.label_ids, task, columns["age"], slices)


@contextmanager
def fp32_forward(model):
    """Run `model` without the bf16/fp16 autocast that accelerate wraps around its forward for a mixed-precision run.

    Reported metrics (metrics.json, the card) must be what fp32 inference (`pipeline`, the app) gives; accelerate keeps
    the unwrapped forward as `_original_forward`. The autocast forward is restored afterwards.
    """
    original = model.__dict__.get("_original_forward")
    if original is None:  # no mixed precision: nothing to undo
        yield model
        return
    autocast_forward = model.forward
    model.forward = original
    try:
        yield model
    finally:
        model.forward = autocast_forward


def _slice_values(columns, column: str) -> list[str]:
    feature = columns.features[column]
    values = columns[column]
    if hasattr(feature, "names"):
        return [feature.names[v] if v is not None else None for v in values]
    return values


def format_table(results: dict) -> str:
    """Overall metrics per split as a fixed-width table."""
    names = [n for n in ("gender_accuracy", "gender_macro_f1", "age_group_accuracy", "age_group_one_off_accuracy", "age_mae", "joint_accuracy")
             if any(n in r["metrics"] for r in results.values())]
    lines = [f"{'split':<12}" + "".join(f"{n:>28}" for n in names)]
    for split, result in results.items():
        lines.append(f"{split:<12}" + "".join(f"{result['metrics'].get(n, float('nan')):>28.4f}" for n in names))
    for split, result in results.items():
        for name, slice_name in sorted((k, v) for k, v in result["details"].items() if k.startswith("worst/")):
            metric = name.removeprefix("worst/")
            lines.append(f"{split} worst slice for {metric}: {slice_name} ({result['metrics'][f'{metric}/{slice_name}']:.4f})")
        if result["details"].get("too_small_to_judge"):
            lines.append(f"{split}: too small to judge (under 20): {', '.join(result['details']['too_small_to_judge'])}")
    return "\n".join(lines)


def write_evaluation(output_dir: Path, results: dict, log_history: list[dict], task: str) -> None:
    """metrics.json (flat numbers per split), evaluation.json (matrices, worst slices), the plots, and the table."""
    (output_dir / "metrics.json").write_text(json.dumps({s: r["metrics"] for s, r in results.items()}, indent=2))
    (output_dir / "evaluation.json").write_text(json.dumps({s: r["details"] for s, r in results.items()}, indent=2))
    plot_training_curves(log_history, output_dir / PLOTS["curves"])
    plot_confusion_matrices(results["test"]["details"], output_dir / PLOTS["confusion"])
    plot_accuracy_by_age_group(results["test"]["metrics"], output_dir / PLOTS["age_groups"])
    print(format_table(results))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(log_history: list[dict], path: Path) -> None:
    """Training loss and validation accuracy per epoch, with each epoch's wall time."""
    plt = _pyplot()
    train = [(e["epoch"], e["loss"]) for e in log_history if "loss" in e and "epoch" in e]
    evals = [e for e in log_history if "eval_loss" in e]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        loss_axis.plot(*zip(*train), label="train loss")
    if evals:
        loss_axis.plot([e["epoch"] for e in evals], [e["eval_loss"] for e in evals], "o-", label="validation loss")
        for key in ("eval_gender_accuracy", "eval_age_group_accuracy", "eval_joint_accuracy"):
            if key in evals[0]:
                accuracy_axis.plot([e["epoch"] for e in evals], [e[key] for e in evals], "o-", label=key.removeprefix("eval_"))
    # Each epoch's wall time, written under its validation point.
    seconds = {round(e["epoch"]): e["epoch_seconds"] for e in log_history if "epoch_seconds" in e}
    for e in evals:
        if round(e["epoch"]) in seconds:
            accuracy_axis.annotate(f"{seconds[round(e['epoch'])]:.0f}s", (e["epoch"], 0.02), ha="center", fontsize=8,
                                   xycoords=("data", "axes fraction"))
    loss_axis.set(xlabel="epoch", ylabel="loss", title="loss")
    accuracy_axis.set(xlabel="epoch (wall time per epoch at the bottom)", ylabel="accuracy", title="validation accuracy")
    loss_axis.legend()
    accuracy_axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_confusion_matrices(details: dict, path: Path) -> None:
    plt = _pyplot()
    matrices = [(k, np.array(v)) for k, v in details.items() if k.endswith("_confusion_matrix")]
    figure, axes = plt.subplots(1, len(matrices), figsize=(5 * len(matrices), 4.5), squeeze=False)
    for axis, (name, matrix) in zip(axes[0], matrices):
        names = GENDERS if name.startswith("gender") else AGE_GROUPS
        axis.imshow(matrix, cmap="Blues")
        axis.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names, yticklabels=names,
                 xlabel="predicted", ylabel="true", title=name.replace("_", " "))
        for (i, j), count in np.ndenumerate(matrix):
            axis.text(j, i, int(count), ha="center", va="center", fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_accuracy_by_age_group(metrics: dict, path: Path) -> None:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 4))
    for name in ("gender_accuracy", "age_group_accuracy"):
        values = [metrics.get(f"{name}/age_group={g}") for g in AGE_GROUPS]
        if any(v is not None for v in values):
            axis.plot(AGE_GROUPS, [np.nan if v is None else v for v in values], "o-", label=name)
    axis.set(xlabel="true age group", ylabel="accuracy", ylim=(0, 1), title="test accuracy by age group")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def evaluate_model_folder(model_dir: str | Path, data_dir: str | Path, metric, splits=("validation", "test"),
                          slice_columns=("age_group", "race", "source")) -> dict:
    """A saved model (fp32, its own image processor) on a prepared dataset's splits, as the Trainer's evaluation
    measures it: for re-measuring a folder whose weights changed after training (calibration)."""
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from ..data.imagefolder import load_prepared
    from ..labels import GENDERS, JOINT_LABELS, task_target
    from .calibration import joint_logits

    model = AutoModelForImageClassification.from_pretrained(model_dir, dtype=torch.float32)
    processor = AutoImageProcessor.from_pretrained(model_dir)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    task = "gender_age" if labels == JOINT_LABELS else "gender" if labels == GENDERS else "age"
    dataset = load_prepared(data_dir)
    results = {}
    for split in splits:
        rows = dataset[split].with_format(None)
        targets = [task_target(task, g, a) for g, a in zip(rows["gender"], rows["age_group"])]
        keep = [i for i, target in enumerate(targets) if target is not None]
        part = rows.select(keep)
        logits = joint_logits(model, processor, [example["image"] for example in part])
        columns = part.select_columns(["age", *slice_columns])
        slices = {column: _slice_values(columns, column) for column in slice_columns}
        references = np.array([targets[i] for i in keep])
        results[split] = compute_metrics_with_slices(metric, softmax(logits), references, task, columns["age"], slices)
    return results
