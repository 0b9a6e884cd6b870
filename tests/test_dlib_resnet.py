"""dlib's face-recognition ResNet: dlib's file format, the exact network, the transformers conversion, distillation.

The file is written here in dlib's serialisation with random weights of the real shapes (the real one comes from
`face_recognition_models`, which the project does not depend on); a real-data test checks the real file against dlib.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, prepared, random_image
from genderage.training import dlib_resnet
from genderage.training.dlib_resnet import STAGES, DlibConv, DlibResNet, DlibWeights


def dlib_int(value: int) -> bytes:
    body = abs(value).to_bytes(max(1, (abs(value).bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def dlib_string(text: bytes) -> bytes:
    return dlib_int(len(text)) + text


def dlib_tensor(values: np.ndarray) -> bytes:
    return dlib_int(2) + b"".join(dlib_int(d) for d in (values.size, 1, 1, 1)) + values.astype("<f4").tobytes()


def random_weights(seed: int = 0) -> DlibWeights:
    """The real network's shapes, He-scaled random weights, affine layers near the identity."""
    rng = np.random.default_rng(seed)

    def conv(out_channels: int, in_channels: int, size: int, stride: int) -> DlibConv:
        scale = np.sqrt(2 / (in_channels * size * size))
        weight = (rng.standard_normal((out_channels, in_channels, size, size)) * scale).astype(np.float32)
        bias = (rng.standard_normal(out_channels) * 0.1).astype(np.float32)
        return DlibConv(weight, bias, stride, 0 if stride == 2 else size // 2)

    convs, channels = [conv(32, 3, 7, 2)], 32
    for stage, (width, depth) in enumerate(STAGES):
        for block in range(depth):
            convs += [conv(width, channels, 3, 2 if stage > 0 and block == 0 else 1), conv(width, width, 3, 1)]
            channels = width
    affines = [((0.5 + rng.random(c.weight.shape[0])).astype(np.float32), (rng.standard_normal(c.weight.shape[0]) * 0.1).astype(np.float32))
               for c in convs]
    return DlibWeights(convs, affines, rng.standard_normal((256, 128)).astype(np.float32))


def write_dlib_file(path: Path, weights: DlibWeights) -> Path:
    """dlib's layout: layer names as strings, tensors, settings, and layers without weights in between."""
    parts = [dlib_string(b"loss_metric_2"), dlib_int(3), dlib_string(b"input_rgb_image_sized")]
    for conv, (gamma, beta) in zip(weights.convs, weights.affines):
        filters, _, size, _ = conv.weight.shape
        parts += [dlib_string(b"con_4"), dlib_tensor(np.concatenate([conv.weight.ravel(), conv.bias])),
                  *(dlib_int(v) for v in (filters, size, size, conv.stride, conv.stride, conv.padding, conv.padding)),
                  dlib_int(-1), dlib_string(b"affine_"), dlib_tensor(np.concatenate([gamma, beta])), dlib_int(1),
                  dlib_string(b"relu_")]
    parts += [dlib_string(b"avg_pool_2"), dlib_string(b"fc_2"), dlib_int(128), dlib_int(256), dlib_tensor(weights.projection.ravel())]
    path.write_bytes(b"".join(parts))
    return path


@pytest.fixture(scope="module")
def weights() -> DlibWeights:
    return random_weights()


@pytest.fixture(scope="module")
def dat_file(weights, tmp_path_factory) -> Path:
    return write_dlib_file(tmp_path_factory.mktemp("dlib") / dlib_resnet.MODEL_FILE, weights)


def test_reader_returns_every_layer_as_written(weights, dat_file):
    read = dlib_resnet.read_dlib_resnet(dat_file)
    assert len(read.convs) == 29 and len(read.affines) == 29
    for original, loaded in zip(weights.convs, read.convs):
        np.testing.assert_array_equal(original.weight, loaded.weight)
        np.testing.assert_array_equal(original.bias, loaded.bias)
        assert (loaded.stride, loaded.padding) == (original.stride, original.padding)
    for (gamma, beta), (read_gamma, read_beta) in zip(weights.affines, read.affines):
        np.testing.assert_array_equal(gamma, read_gamma)
        np.testing.assert_array_equal(beta, read_beta)
    np.testing.assert_array_equal(weights.projection, read.projection)


def test_reader_rejects_another_network(weights, tmp_path):
    shallow = DlibWeights(weights.convs[:5], weights.affines[:5], weights.projection)
    with pytest.raises(ValueError, match="not dlib's face ResNet"):
        dlib_resnet.read_dlib_resnet(write_dlib_file(tmp_path / "other.dat", shallow))
    (tmp_path / "junk.dat").write_bytes(b"not a dlib file at all")
    with pytest.raises(ValueError, match="not dlib's face ResNet"):
        dlib_resnet.read_dlib_resnet(tmp_path / "junk.dat")


def test_add_padded_is_dlibs_add_prev():
    small, large = torch.ones(1, 2, 3, 3), torch.full((1, 4, 4, 4), 2.0)
    total = dlib_resnet._add_padded(small, large)
    assert total.shape == (1, 4, 4, 4)
    assert torch.all(total[:, :2, :3, :3] == 3) and total[0, 0, 3, 3] == 2 and torch.all(total[:, 2:] == 2)


def test_exact_network_gives_pooled_features_and_descriptor(weights):
    network = DlibResNet(weights)
    pixels = torch.randn(2, 3, 150, 150)
    features = network(pixels)
    assert features.shape == (2, 256)
    torch.testing.assert_close(network.descriptor(pixels), features @ torch.from_numpy(weights.projection))
    assert not any(p.requires_grad for p in network.parameters())


def test_processor_feeds_the_network_dlibs_input():
    chip = random_image(3, size=150)
    pixels = dlib_resnet.image_processor()(chip, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(pixels, dlib_resnet.dlib_pixels([chip]), atol=1e-5, rtol=0)


def test_conversion_puts_each_weight_in_its_place(weights):
    """transformers pads stride-2 layers where dlib does not, so whole networks differ; the stride-1 first stage,
    the folded conv bias and the identity shortcuts must be exact."""
    exact = DlibResNet(weights).eval()
    student = dlib_resnet.to_transformers_resnet(weights, ["female", "male"]).eval()
    x = torch.randn(2, 32, 35, 35)
    with torch.no_grad():
        expected = exact.block(5, exact.block(3, exact.block(1, x, False), False), False)
        torch.testing.assert_close(student.resnet.encoder.stages[0](x), expected, atol=1e-5, rtol=1e-5)
        shortcut = student.resnet.encoder.stages[1].layers[0].shortcut(x)
    assert shortcut.shape == (2, 64, 18, 18)
    torch.testing.assert_close(shortcut[:, :32], x[:, :, ::2, ::2], atol=1e-5, rtol=0)
    assert torch.all(shortcut[:, 32:] == 0)
    assert student.config.id2label == {0: "female", 1: "male"}


def test_conversion_is_independent_of_the_teacher(weights):
    """Training the student must not move the teacher: no shared storage."""
    exact = DlibResNet(weights)
    student = dlib_resnet.to_transformers_resnet(weights, ["a", "b"])
    before = exact.convs[0].weight.clone()
    student.resnet.embedder.embedder.convolution.weight.data.add_(1.0)
    torch.testing.assert_close(exact.convs[0].weight, before)


def test_batchnorm_statistics_keep_the_eval_function(weights):
    student = dlib_resnet.to_transformers_resnet(weights, ["a", "b"]).eval()
    pixels = torch.randn(8, 3, 150, 150)
    with torch.no_grad():
        before = dlib_resnet.pooled_features(student, pixels)
        dlib_resnet.match_batchnorm_statistics(student, pixels)
        after = dlib_resnet.pooled_features(student, pixels)
        stem = student.resnet.embedder.embedder.normalization
        assert not torch.allclose(stem.running_var, torch.ones_like(stem.running_var), atol=1e-3)
        torch.testing.assert_close(after, before, atol=1e-3, rtol=1e-3)  # float32 rounding only
        # In training mode the batch's statistics replace the running ones: on the same batch, nearly the same.
        training = dlib_resnet.pooled_features(student.train(), pixels)
    assert torch.nn.functional.cosine_similarity(training, before).min() > 0.99


@pytest.mark.slow
def test_distillation_writes_a_model_that_pipeline_loads(dat_file, weights, tmp_path):
    import convert_dlib
    from transformers import pipeline

    root = tmp_path / "utk"
    root.mkdir()
    for i in range(24):
        age, gender = [5, 25, 45, 65][i % 4], i % 2
        random_image(i, size=64).save(root / f"{age}_{gender}_{i % 5}_20170101000000{i:03d}.jpg.chip.jpg")
    data_dir = prepared(tmp_path, f"utkface={root}")
    out = tmp_path / "student"
    code = convert_dlib.main(["--config", str(REPO / "configs" / "dlib_distil.yaml"), "--teacher", str(dat_file),
                              "--data_dir", str(data_dir), "--output_dir", str(out), "--max_steps", "2",
                              "--per_device_train_batch_size", "4", "--calibration_samples", "8",
                              "--eval_strategy", "no", "--save_strategy", "no", "--dataloader_num_workers", "0",
                              "--dataloader_persistent_workers", "false"])
    assert code == 0
    classifier = pipeline("image-classification", model=str(out))  # a plain ResNet: no trust_remote_code
    answers = classifier(random_image(99, size=150), top_k=classifier.model.config.num_labels)
    assert len(answers) == 18
    converted = dlib_resnet.to_transformers_resnet(weights, ["a", "b"])
    stem = converted.resnet.embedder.embedder.convolution.weight
    assert not torch.allclose(classifier.model.resnet.embedder.embedder.convolution.weight, stem)  # it trained

    from genderage.training.onnx_export import export_onnx

    assert export_onnx(out).exists()


def test_convert_dlib_reports_a_missing_teacher(tmp_path):
    import convert_dlib

    code = convert_dlib.main(["--config", str(REPO / "configs" / "dlib_distil.yaml"), "--teacher", str(tmp_path / "missing.dat"),
                              "--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "out")])
    assert code == 2


@pytest.mark.real_data
def test_exact_network_reproduces_dlibs_descriptors():
    dlib = pytest.importorskip("dlib")
    try:
        model_file = dlib_resnet.installed_model_file()
    except FileNotFoundError:
        pytest.skip("face_recognition_models is not installed")
    from skimage.data import astronaut

    photo = astronaut()
    face = dlib.get_frontal_face_detector()(photo, 1)[0]
    landmarks = dlib.shape_predictor(str(model_file.parent / "shape_predictor_5_face_landmarks.dat"))(photo, face)
    chip = np.asarray(dlib.get_face_chip(photo, landmarks, 150, 0.25))
    expected = np.array(dlib.face_recognition_model_v1(str(model_file)).compute_face_descriptor(chip))
    with torch.no_grad():
        ours = DlibResNet(dlib_resnet.read_dlib_resnet(model_file)).descriptor(dlib_resnet.dlib_pixels([chip]))[0].numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-5)
