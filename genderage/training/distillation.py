"""Face-pretrained initialisation: dlib's face-recognition ResNet distilled into a transformers ResNet.

The converted transformers network computes a function near dlib's but not equal to it (see `dlib_resnet`). Feature
distillation trains it, as the student, to give the exact network's pooled features on training faces with the
usual augmentation (MSE). The Trainer runs it, so a long distillation stops and continues with `--resume true`. The
result is a model folder for `train.py` (`model_name_or_path`), with a fresh gender/age head.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import Trainer
from transformers.trainer_utils import get_last_checkpoint

from ..labels import JOINT_LABELS
from .config import DataArguments, TrainArguments
from .dlib_resnet import (
    DlibResNet,
    image_processor,
    installed_model_file,
    match_batchnorm_statistics,
    pooled_features,
    read_dlib_resnet,
    to_transformers_resnet,
)
from .modeling import save_model
from .trainer import collate, load_task_dataset, make_batch_transform
from .transforms import build_eval_transform, build_train_transform

logger = logging.getLogger(__name__)


@dataclass
class DistilArguments:
    """Where the teacher comes from and how the student's BatchNorms are first set."""

    teacher: str = field(
        default="face_recognition_models",
        metadata={"help": "dlib's dlib_face_recognition_resnet_model_v1.dat, or face_recognition_models for the installed package's."},
    )
    calibration_samples: int = field(
        default=256, metadata={"help": "Training faces whose activations set the student's BatchNorm statistics before distilling."}
    )


ARGUMENT_CLASSES = (DistilArguments, DataArguments, TrainArguments)


class FeatureDistillation(torch.nn.Module):
    """Student and frozen teacher; the loss is the MSE between their pooled features."""

    def __init__(self, student: torch.nn.Module, teacher: DlibResNet):
        super().__init__()
        self.student, self.teacher = student, teacher

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        with torch.no_grad():
            target = self.teacher(pixel_values)
        return {"loss": F.mse_loss(pooled_features(self.student, pixel_values), target)}


def teacher_file(teacher: str) -> Path:
    return installed_model_file() if teacher == "face_recognition_models" else Path(teacher)


def run_distillation(distil_args: DistilArguments, data_args: DataArguments, training_args: TrainArguments) -> Path:
    """Convert, calibrate and distil; write the student as a model folder to output_dir."""
    weights = read_dlib_resnet(teacher_file(distil_args.teacher))
    teacher = DlibResNet(weights).eval()
    student = to_transformers_resnet(weights, JOINT_LABELS)
    processor = image_processor()
    dataset = load_task_dataset(data_args)

    # BatchNorm statistics from a sample of training faces: training mode then starts from the converted function.
    sample = dataset["train"].shuffle(seed=training_args.seed).select(range(min(distil_args.calibration_samples, len(dataset["train"]))))
    match_batchnorm_statistics(student, build_eval_transform(processor)(sample["image"]))

    dataset["train"].set_transform(make_batch_transform(build_train_transform(processor, data_args), data_args.task, True))
    if "validation" in dataset and len(dataset["validation"]):
        dataset["validation"].set_transform(make_batch_transform(build_eval_transform(processor), data_args.task, False))
    trainer = Trainer(
        model=FeatureDistillation(student, teacher),
        args=training_args,
        train_dataset=dataset["train"],
        eval_dataset=dataset.get("validation") if training_args.eval_strategy != "no" else None,
        data_collator=collate,
    )
    output_dir = Path(training_args.output_dir)
    last_checkpoint = get_last_checkpoint(output_dir) if training_args.resume and os.path.isdir(output_dir) else None
    trainer.train(resume_from_checkpoint=last_checkpoint)
    if trainer.is_world_process_zero():
        save_model(student, processor, output_dir)
    return output_dir
