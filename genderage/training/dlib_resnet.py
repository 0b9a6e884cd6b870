"""dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`, CC0, ~3M faces) in PyTorch.

Three pieces: its weights read from dlib's own serialisation; `DlibResNet`, the exact network (dlib's descriptors
to ~1e-6: the teacher); and `to_transformers_resnet`, the same weights in a `ResNetForImageClassification` that
`pipeline()` loads without remote code. The two differ where transformers cannot say what dlib does: dlib's
stride-2 convolutions and pools have no padding, and its down-sampling shortcut is a 2×2 average with zero extra
channels (transformers: a strided 1×1 convolution, set here to the identity on the old channels). So the
transformers network computes a nearby function; `distil` pulls it onto the exact one.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150  # dlib's aligned chips: 150 px, 25% padding around the landmarks
RGB_MEAN = (122.782, 117.001, 104.298)  # dlib's input layer: (RGB - mean) / 256
RGB_SCALE = 256.0
STAGES = ((32, 3), (64, 4), (128, 3), (256, 3), (256, 1))  # (channels, residual blocks); each later stage halves
STEM_CHANNELS = 32
FEATURES = 256  # pooled features (the descriptor is a 128-d projection of them)
_LAYER_NAME = re.compile(rb"\x01\x05con_4|\x01\x07affine_|\x01\x04fc_2")


@dataclass
class DlibConv:
    weight: np.ndarray  # (out, in, kh, kw)
    bias: np.ndarray
    stride: int
    padding: int


@dataclass
class DlibWeights:
    convs: list[DlibConv]  # the stem, then two per residual block, in input → output order
    affines: list[tuple[np.ndarray, np.ndarray]]  # (gamma, beta) after each convolution
    projection: np.ndarray  # (256, 128): pooled features → descriptor


def installed_model_file() -> Path:
    """The .dat file of the installed `face_recognition_models` (found without importing it: it needs setuptools)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("face_recognition_models is not installed: pip install face_recognition_models==0.3.0")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / MODEL_FILE


class _Reader:
    """dlib's serialisation: an int is a byte (low 4 bits: how many bytes follow, bit 7: sign), then those bytes
    little-endian; a tensor is an int version, four int dims, then little-endian float32s."""

    def __init__(self, data: bytes, offset: int):
        self.data, self.offset = data, offset

    def int(self) -> int:
        control = self.data[self.offset]
        size = control & 0x0F
        value = int.from_bytes(self.data[self.offset + 1 : self.offset + 1 + size], "little")
        self.offset += 1 + size
        return -value if control & 0x80 else value

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            raise ValueError("unknown dlib tensor version")
        count = int(np.prod([self.int() for _ in range(4)]))
        values = np.frombuffer(self.data, "<f4", count, self.offset).copy()
        self.offset += 4 * count
        return values


def read_dlib_resnet(path: str | Path) -> DlibWeights:
    """Read the convolutions, affine layers and projection of dlib's face-recognition ResNet from its .dat file."""
    data = Path(path).read_bytes()
    convs, affines, projection = [], [], None
    offset = 0
    while match := _LAYER_NAME.search(data, offset):
        reader = _Reader(data, match.end())
        name = match.group()[2:]
        if name == b"con_4":
            params = reader.tensor()
            filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.int() for _ in range(7))
            if rows != cols or stride_y != stride_x or pad_y != pad_x:
                raise ValueError(f"{path}: a non-square convolution is not this network's")
            weight = params[:-filters].reshape(filters, -1, rows, cols)
            convs.append(DlibConv(weight, params[-filters:], stride_y, pad_y))
        elif name == b"affine_":
            params = reader.tensor()
            affines.append((params[: len(params) // 2], params[len(params) // 2 :]))
        else:
            outputs, inputs = reader.int(), reader.int()
            projection = reader.tensor()[: inputs * outputs].reshape(inputs, outputs)
        offset = reader.offset
    blocks = sum(depth for _, depth in STAGES)
    if len(convs) != 1 + 2 * blocks or len(affines) != len(convs) or projection is None:
        raise ValueError(f"{path}: {len(convs)} convolutions, {len(affines)} affine layers: not dlib's face ResNet")
    return DlibWeights(convs, affines, projection)


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: both operands zero-padded (channels, rows, columns at the end) to the larger size."""
    size = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, size[2] - t.shape[3], 0, size[1] - t.shape[2], 0, size[0] - t.shape[1]))

    return pad(a) + pad(b)


class DlibResNet(torch.nn.Module):
    """The exact network, frozen: `forward` gives the 256 pooled features, `descriptor` dlib's 128-d descriptor."""

    def __init__(self, weights: DlibWeights):
        super().__init__()
        self.convs = torch.nn.ModuleList()
        for conv in weights.convs:
            out_channels, in_channels, size, _ = conv.weight.shape
            layer = torch.nn.Conv2d(in_channels, out_channels, size, conv.stride, conv.padding)
            layer.weight.data = torch.from_numpy(conv.weight)
            layer.bias.data = torch.from_numpy(conv.bias)
            self.convs.append(layer)
        self.register_buffer("gammas", torch.from_numpy(np.concatenate([g for g, _ in weights.affines])))
        self.register_buffer("betas", torch.from_numpy(np.concatenate([b for _, b in weights.affines])))
        self.register_buffer("projection", torch.from_numpy(weights.projection))
        ends = np.cumsum([conv.out_channels for conv in self.convs])
        self.affine_channels = [slice(end - conv.out_channels, end) for end, conv in zip(ends, self.convs)]
        self.requires_grad_(False)

    def _conv_affine(self, index: int, x: torch.Tensor) -> torch.Tensor:
        channels = self.affine_channels[index]  # this layer's gammas and betas in the concatenated buffers
        return self.convs[index](x) * self.gammas[channels, None, None] + self.betas[channels, None, None]

    def block(self, index: int, x: torch.Tensor, down: bool) -> torch.Tensor:
        """The residual block whose first convolution is `convs[index]`; `down`: the stride-2 kind."""
        y = self._conv_affine(index + 1, F.relu(self._conv_affine(index, x)))
        return F.relu(_add_padded(y, F.avg_pool2d(x, 2, 2) if down else x))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self._conv_affine(0, pixels)), 3, 2)
        index = 1
        for stage, (_, depth) in enumerate(STAGES):
            for block in range(depth):
                x = self.block(index, x, down=stage > 0 and block == 0)
                index += 2
        return x.mean(dim=(2, 3))

    def descriptor(self, pixels: torch.Tensor) -> torch.Tensor:
        return self(pixels) @ self.projection


def dlib_pixels(chips: list) -> torch.Tensor:
    """RGB chips (PIL images or HxWx3 uint8 arrays, 150 px) as dlib's input: (RGB - mean) / 256, NCHW."""
    array = np.stack([np.asarray(chip, dtype=np.float32) for chip in chips])
    return torch.from_numpy((array - np.float32(RGB_MEAN)) / RGB_SCALE).permute(0, 3, 1, 2).contiguous()


def image_processor(size: int = CHIP_SIZE) -> ViTImageProcessor:
    """A processor that feeds the transformers network what dlib's input layer computes: (x/255 - m/255) / (256/255)."""
    return ViTImageProcessor(
        size={"height": size, "width": size},
        resample=2,  # bilinear
        image_mean=[m / 255 for m in RGB_MEAN],
        image_std=[RGB_SCALE / 255] * 3,
    )


def _set_batchnorm(norm: torch.nn.BatchNorm2d, gamma: np.ndarray | None = None, beta: np.ndarray | None = None) -> None:
    """A BatchNorm that computes gamma·x + beta in eval mode (the identity without gamma and beta)."""
    channels = norm.num_features
    norm.weight.data = torch.tensor(gamma) if gamma is not None else torch.ones(channels)
    norm.bias.data = torch.tensor(beta) if beta is not None else torch.zeros(channels)
    norm.running_mean.zero_()
    norm.running_var.fill_(1 - norm.eps)


def _set_conv(conv: torch.nn.Conv2d, source: DlibConv, norm: torch.nn.BatchNorm2d, gamma, beta) -> None:
    """dlib's conv bias folds into the BatchNorm's shift: gamma·(Wx + b) + beta = gamma·Wx + (gamma·b + beta)."""
    conv.weight.data = torch.tensor(source.weight)  # a copy: training the student must not move the teacher
    _set_batchnorm(norm, gamma, gamma * source.bias + beta)


def to_transformers_resnet(weights: DlibWeights, labels: list[str]) -> ResNetForImageClassification:
    """dlib's weights in a transformers ResNet (basic blocks, 32/64/128/256/256) with a new head for `labels`."""
    config = ResNetConfig(
        num_channels=3,
        embedding_size=STEM_CHANNELS,
        hidden_sizes=[channels for channels, _ in STAGES],
        depths=[depth for _, depth in STAGES],
        layer_type="basic",
        hidden_act="relu",
        downsample_in_first_stage=False,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    model = ResNetForImageClassification(config).eval()
    stem = model.resnet.embedder.embedder
    _set_conv(stem.convolution, weights.convs[0], stem.normalization, *weights.affines[0])
    index = 1
    for stage in model.resnet.encoder.stages:
        for block in stage.layers:
            for layer in block.layer:
                _set_conv(layer.convolution, weights.convs[index], layer.normalization, *weights.affines[index])
                index += 1
            if not isinstance(block.shortcut, torch.nn.Identity):  # the identity on the old channels, zeros on the new
                shortcut = block.shortcut.convolution
                shortcut.weight.data.zero_()
                shortcut.weight.data[: shortcut.in_channels, :, 0, 0] = torch.eye(shortcut.in_channels)
                _set_batchnorm(block.shortcut.normalization)
    return model


@torch.no_grad()
def match_batchnorm_statistics(model: torch.nn.Module, pixels: torch.Tensor) -> None:
    """Give every BatchNorm the statistics of its inputs on `pixels` without changing the eval-mode function.

    A BatchNorm holding gamma·x + beta with zero mean and unit variance would, in training mode, normalise with the
    batch's statistics instead: a different network. With running stats (μ, σ²) and weight gamma·σ, bias
    beta + gamma·μ, eval mode computes the same gamma·x + beta and training mode starts close to it.
    """
    inputs: dict[torch.nn.BatchNorm2d, tuple[torch.Tensor, torch.Tensor]] = {}

    def record(norm, args, _output):
        inputs[norm] = (args[0].mean(dim=(0, 2, 3)), args[0].var(dim=(0, 2, 3)))

    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    hooks = [norm.register_forward_hook(record) for norm in norms]
    was_training = model.training
    model.eval()
    model(pixels)
    for hook in hooks:
        hook.remove()
    for norm in norms:
        mean, var = inputs[norm]
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)  # the layer's current gamma
        shift = norm.bias - scale * norm.running_mean
        std = torch.sqrt(var + norm.eps)
        norm.running_mean.copy_(mean)
        norm.running_var.copy_(var)
        norm.weight.copy_(scale * std)
        norm.bias.copy_(shift + scale * mean)
    model.train(was_training)


def pooled_features(model: ResNetForImageClassification, pixels: torch.Tensor) -> torch.Tensor:
    """The transformers network's pooled features, comparable with `DlibResNet.forward`."""
    return model.resnet(pixels).pooler_output.flatten(1)
