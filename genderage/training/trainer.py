"""The training flow: dataset → labels → model → transforms → Trainer → evaluation → model folder."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import ImageOps
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from .. import METRIC_MODULE
from ..labels import AGE_GROUPS, GENDERS, JOINT_LABELS, marginals, task_target
from .config import DataArguments, ModelArguments, TrainArguments
from .linear_probe import extract_features, probe_head
from .losses import partial_cross_entropy, target_sets
from .modeling import build_timm_model, build_transformers_model, head_parameter_names, learning_rate_scales, save_model
from .sampling import inverse_frequency_weights, sampling_weights
from .transforms import build_eval_transform, build_train_transform

logger = logging.getLogger(__name__)

SLICE_COLUMNS = ("age_group", "race", "source")
TASK_LABELS = {"gender": GENDERS, "age": AGE_GROUPS, "gender_age": JOINT_LABELS}


def load_task_dataset(data_args: DataArguments):
    """The prepared dataset with the rows that have the task's labels, optionally truncated."""
    from ..data.imagefolder import load_prepared

    dataset = load_prepared(data_args.data_dir)
    dataset = dataset.filter(
        lambda g, a: [task_target(data_args.task, gi, ai) is not None for gi, ai in zip(g, a)],
        input_columns=["gender", "age_group"], batched=True,
    )
    if data_args.train_sources:
        dataset["train"] = only_sources(dataset["train"], data_args.train_sources)
    limits = {"train": data_args.max_train_samples, "validation": data_args.max_eval_samples, "test": data_args.max_eval_samples}
    for split, limit in limits.items():
        if limit is not None and split in dataset and len(dataset[split]) > limit:
            dataset[split] = dataset[split].shuffle(seed=0).select(range(limit))
    if len(dataset["train"]) == 0:
        raise ValueError(f"{data_args.data_dir} has no training images with {data_args.task} labels")
    return dataset


def only_sources(split, sources: str):
    """The rows of `split` whose source is one of the comma-separated `sources`."""
    wanted = {name.strip() for name in sources.split(",") if name.strip()}
    present = set(split.unique("source")) if "source" in split.column_names else set()
    if not wanted <= present:
        raise ValueError(f"--train_sources {sources!r}: no source named {sorted(wanted - present)} (there are {sorted(present)})")
    return split.filter(lambda source: source in wanted, input_columns="source")


def build_model(model_args: ModelArguments, labels: list[str]):
    if model_args.timm_architecture:
        return build_timm_model(
            model_args.timm_architecture, labels, model_args.image_size, model_args.pretrained_weights, crop_pct=model_args.crop_pct
        )
    return build_transformers_model(model_args.model_name_or_path, labels, model_args.image_size)


def make_batch_transform(image_transform, task: str, per_image: bool, mirror_pairs: bool = False):
    """A `set_transform` function: images → pixel_values, label columns → labels. With `mirror_pairs`, each image's
    mirror image, augmented on its own draw, comes along as pair_pixel_values (for the consistency term)."""

    def transform(batch: dict) -> dict:
        images = [image.convert("RGB") for image in batch["image"]]
        pixels = [image_transform(image) for image in images] if per_image else list(image_transform(images))
        labels = [task_target(task, g, a) for g, a in zip(batch["gender"], batch["age_group"])]
        columns = {"pixel_values": pixels, "labels": labels}
        if mirror_pairs:
            columns["pair_pixel_values"] = [image_transform(ImageOps.mirror(image)) for image in images]
        return columns

    return transform


def collate(examples: list[dict]) -> dict:
    batch = {
        "pixel_values": torch.stack([example["pixel_values"] for example in examples]),
        "labels": torch.tensor([example["labels"] for example in examples]),
    }
    if "pair_pixel_values" in examples[0]:
        batch["pair_pixel_values"] = torch.stack([example["pair_pixel_values"] for example in examples])
    return batch


def symmetric_kl(logits: torch.Tensor, other_logits: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of (KL(p || q) + KL(q || p)) / 2 between the two answers' softmax distributions."""
    log_p, log_q = logits.float().log_softmax(-1), other_logits.float().log_softmax(-1)
    return 0.5 * ((log_p.exp() * (log_p - log_q)).sum(-1) + (log_q.exp() * (log_q - log_p)).sum(-1)).mean()


class FreezeBackbone(TrainerCallback):
    """Two-stage transfer learning: only the head trains for the first `epochs` epochs."""

    def __init__(self, model, epochs: int):
        head = head_parameter_names(model)
        self.backbone = [p for name, p in model.named_parameters() if name not in head]
        self.epochs = epochs

    def on_epoch_begin(self, args, state, control, **kwargs):
        frozen = state.epoch < self.epochs
        for parameter in self.backbone:
            parameter.requires_grad_(not frozen)


class EpochTimer(TrainerCallback):
    """Log each epoch's wall time, for the training-curve plot and the card."""

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        state.log_history.append({"epoch": state.epoch, "epoch_seconds": round(time.perf_counter() - self.started, 1)})


class GenderAgeTrainer(Trainer):
    """Trainer with a separate backbone learning rate, optional class-weighted loss, a mirror-and-framing consistency
    term and an L2-SP pull of the backbone towards its starting weights."""

    def __init__(self, *args, class_weights: torch.Tensor | None = None, mirrored_validation=None,
                 class_names: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.class_weights = class_weights
        # The validation faces mirrored (same order), and the class names that turn logits into P(female)
        # (not `label_names`: the Trainer's own attribute, the label columns).
        self.mirrored_validation, self.class_names = mirrored_validation, class_names
        self._last_logits = None
        # L2-SP's anchor: the backbone as training starts (the pretrained network), on the model's device.
        head = head_parameter_names(self.model)
        self.l2sp_anchor = {name: p.detach().clone() for name, p in self.model.named_parameters()
                            if name not in head} if self.args.l2sp_weight > 0 else {}

    def evaluation_loop(self, *args, **kwargs):
        output = super().evaluation_loop(*args, **kwargs)
        self._last_logits = output.predictions
        return output

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        """The usual evaluation, then (on the validation split) |ΔP(female)| between each face and its mirror image."""
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        if self.mirrored_validation is None or eval_dataset is not None or self._last_logits is None:
            return metrics
        plain = p_female(self._last_logits, self.class_names)
        deltas = np.abs(plain - p_female(self.predict(self.mirrored_validation).predictions, self.class_names))
        figures = {f"{metric_key_prefix}_mirror_p_female_delta_mean": float(deltas.mean()),
                   f"{metric_key_prefix}_mirror_p_female_delta_p95": float(np.percentile(deltas, 95))}
        self.log(figures)
        return metrics | figures

    def create_optimizer(self, model=None):
        if self.optimizer is None and (self.args.backbone_lr_scale != 1.0 or self.args.layer_decay != 1.0):
            decay = {"weight_decay": self.args.weight_decay}
            groups = [{"params": params, "lr": self.args.learning_rate * scale, **decay}
                      for scale, params in learning_rate_scales(self.model, self.args.backbone_lr_scale, self.args.layer_decay)]
            optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, self.model)
            optimizer_kwargs.pop("lr", None)
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return super().create_optimizer()

    def _get_train_sampler(self, train_dataset=None):
        weights = sampling_weights(train_dataset if train_dataset is not None else self.train_dataset, self.args)
        if weights is None:
            return super()._get_train_sampler(train_dataset)
        generator = torch.Generator().manual_seed(self.args.seed)
        return torch.utils.data.WeightedRandomSampler(weights, num_samples=len(weights), replacement=True, generator=generator)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        pair = inputs.pop("pair_pixel_values", None)
        if pair is not None:  # one forward over both views, so BatchNorm sees them together
            inputs = {**inputs, "pixel_values": torch.cat([inputs["pixel_values"], pair]), "labels": inputs["labels"].repeat(2)}
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = partial_cross_entropy(outputs.logits, labels, target_sets(outputs.logits.shape[-1]),
                                     self.args.label_smoothing_factor, self.class_weights)
        if pair is not None:
            logits, pair_logits = outputs.logits.chunk(2)
            loss = loss + self.args.consistency_weight * symmetric_kl(logits, pair_logits)
            outputs.logits = logits
        if self.l2sp_anchor and model.training:
            parameters = dict(self.model.named_parameters())
            distance = sum(((parameters[name] - anchor) ** 2).sum() for name, anchor in self.l2sp_anchor.items())
            loss = loss + 0.5 * self.args.l2sp_weight * distance
        return (loss, outputs) if return_outputs else loss


def p_female(logits: np.ndarray, label_names: list[str]) -> np.ndarray:
    """P(female) per row of logits over `label_names` (the sum of the female joint labels)."""
    from .evaluation import softmax

    return np.array([prediction.gender["female"] for prediction in marginals(softmax(logits), label_names)])


def build_trainer(model_args: ModelArguments, data_args: DataArguments, training_args: TrainArguments):
    """Dataset, model and transforms wired into a Trainer; returns (trainer, dataset, processor, metric)."""
    import evaluate

    from ..data.imagefolder import face_chip_of
    from .evaluation import softmax

    # Data, labels and model.
    dataset = load_task_dataset(data_args)
    labels = TASK_LABELS[data_args.task]
    model, processor = build_model(model_args, labels)
    if "source" in dataset["train"].column_names:
        # What the model saw, for reports that tell in-domain from out-of-domain sets (--train_sources narrows it).
        model.config.training_sources = sorted(dataset["train"].unique("source"))
    chip = face_chip_of(data_args.data_dir) if data_args.data_dir else None
    if chip:
        # Faces cut another way than around the detector's box: serving must cut them the same way.
        model.config.face_chip = chip
    if model_args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    train_labels = [task_target(data_args.task, g, a) for g, a in zip(dataset["train"]["gender"], dataset["train"]["age_group"])]

    # On-the-fly transforms.
    mirror_pairs = training_args.consistency_weight > 0
    dataset["train"].set_transform(make_batch_transform(build_train_transform(processor, data_args), data_args.task, True, mirror_pairs))
    eval_transform = build_eval_transform(processor)
    for split in ("validation", "test"):
        dataset[split].set_transform(make_batch_transform(eval_transform, data_args.task, False))
    mirrored_validation = None
    if training_args.eval_mirror and data_args.task != "age":
        mirrored = make_batch_transform(lambda images: eval_transform([ImageOps.mirror(image) for image in images]), data_args.task, False)
        mirrored_validation = dataset["validation"].with_transform(mirrored)

    # Metric used for checkpoint selection during training.
    metric = evaluate.load(METRIC_MODULE)
    # Each epoch's figures per source too: the mixture's own validation rewards forgetting what lies beyond it.
    plain_validation = dataset["validation"].with_format(None)
    validation_slices = {"source": list(plain_validation["source"])} if "source" in plain_validation.column_names else {}

    def compute_metrics(prediction) -> dict:
        slices = {column: values for column, values in validation_slices.items() if len(values) == len(prediction.label_ids)}
        result = metric.compute(predictions=softmax(prediction.predictions), references=prediction.label_ids, task=data_args.task,
                                slices=slices)
        return {k: v for k, v in result.items() if isinstance(v, float)}

    callbacks = [EpochTimer()]
    if training_args.freeze_backbone_epochs:
        callbacks.append(FreezeBackbone(model, training_args.freeze_backbone_epochs))
    if training_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(training_args.early_stopping_patience))
    trainer = GenderAgeTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset["train"],
        eval_dataset=dataset["validation"],
        data_collator=collate,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
        class_weights=inverse_frequency_weights(train_labels, len(labels)) if training_args.class_weights else None,
        mirrored_validation=mirrored_validation,
        class_names=labels,
    )
    return trainer, dataset, processor, metric


def fit_probe(trainer, dataset, processor, task: str) -> dict:
    """LP-FT's first stage: the head fitted on the frozen backbone's features of the training faces (eval transform),
    its ridge chosen on the validation faces; the probe model is saved in output_dir/linear_probe."""
    from .onnx_export import export_after_training

    args = trainer.args
    eval_transform = make_batch_transform(build_eval_transform(processor), task, False)
    options = {"collate_fn": collate, "batch_size": args.per_device_eval_batch_size,
               "num_workers": args.dataloader_num_workers, "device": args.device}
    train = extract_features(trainer.model, dataset["train"].with_transform(eval_transform), **options)
    validation = extract_features(trainer.model, dataset["validation"], **options)
    figures = probe_head(trainer.model, *train, *validation, sample_weights=sampling_weights(dataset["train"], args))
    logger.info("linear probe: %s", figures)
    if trainer.is_world_process_zero():
        probe_dir = Path(args.output_dir) / "linear_probe"
        save_model(trainer.model, processor, probe_dir)
        export_after_training(probe_dir, trainer.model, processor)
        (probe_dir / "probe.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def run_training(model_args: ModelArguments, data_args: DataArguments, training_args: TrainArguments) -> dict:
    """Train, evaluate on validation and test, and write a complete model folder to output_dir."""
    from .evaluation import evaluate_split, write_evaluation
    from .model_card import write_model_card
    from .onnx_export import export_after_training

    # Checkpoint to resume from.
    last_checkpoint = get_last_checkpoint(training_args.output_dir) if training_args.resume and os.path.isdir(training_args.output_dir) else None
    if training_args.resume and last_checkpoint is None:
        logger.warning("--resume: no checkpoint in %s, starting from scratch", training_args.output_dir)
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False  # we push the finished folder ourselves
    trainer, dataset, processor, metric = build_trainer(model_args, data_args, training_args)

    # LP-FT: the head first, to convergence on frozen features (a resumed run already has it).
    if training_args.linear_probe and last_checkpoint is None:
        fit_probe(trainer, dataset, processor, data_args.task)

    # Train.
    train_result = trainer.train(resume_from_checkpoint=last_checkpoint)
    trainer.log_metrics("train", train_result.metrics)

    # Evaluate on validation and test with per-slice metrics.
    results = {split: evaluate_split(trainer, dataset[split], metric, data_args.task, SLICE_COLUMNS) for split in ("validation", "test")}

    # Save the model folder, metrics, plots and card (main process only).
    if trainer.is_world_process_zero():
        output_dir = Path(training_args.output_dir)
        save_model(trainer.model, processor, output_dir)
        export_after_training(output_dir, trainer.model, processor)  # model.onnx for ONNX Runtime inference
        write_evaluation(output_dir, results, trainer.state.log_history, data_args.task)
        write_model_card(output_dir, model_args, data_args, training_args, results, len(dataset["train"]))
        if push_to_hub:
            from .hub import upload_folder

            print(upload_folder(output_dir, training_args.hub_model_id, "model", dry_run=training_args.dry_run))
    return {split: result["metrics"] for split, result in results.items()}
