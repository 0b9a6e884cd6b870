"""Source mixing (balanced sampling by source × gender × age group) and the photo-from-anywhere augmentations."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value
from torchvision.transforms import v2

from conftest import random_image
from genderage.labels import AGE_GROUPS, GENDERS
from genderage.training.config import DataArguments
from genderage.training.sampling import stratum_weights
from genderage.training.transforms import RandomDownscale, build_train_transform


def mixed_sources() -> Dataset:
    """A big source (90 images, all one stratum) and a small one (10 images, two strata)."""
    rows = [{"source": "big", "gender": 0, "age_group": 3}] * 90
    rows += [{"source": "small", "gender": 1, "age_group": 0}] * 6 + [{"source": "small", "gender": 0, "age_group": 8}] * 4
    features = Features({"source": Value("string"), "gender": ClassLabel(names=GENDERS), "age_group": ClassLabel(names=AGE_GROUPS)})
    return Dataset.from_list(rows, features=features)


@pytest.mark.parametrize("power", [0.0, 0.5, 1.0])
def test_each_stratum_is_drawn_in_proportion_to_its_size_to_the_power_one_minus_p(power):
    dataset = mixed_sources()
    weights = stratum_weights(dataset, power).numpy()
    by_stratum = Counter()
    for row, weight in zip(dataset, weights):
        by_stratum[(row["source"], row["gender"], row["age_group"])] += weight
    sizes = {("big", 0, 3): 90, ("small", 1, 0): 6, ("small", 0, 8): 4}
    expected = {stratum: size ** (1 - power) for stratum, size in sizes.items()}
    total, expected_total = sum(by_stratum.values()), sum(expected.values())
    for stratum in sizes:  # the share of draws each stratum gets
        assert by_stratum[stratum] / total == pytest.approx(expected[stratum] / expected_total)


def test_race_splits_strata_only_when_asked():
    """One source, one gender and age group: 80 White, 20 Black, 10 unlabelled faces; power 1 = every stratum equally."""
    rows = [{"source": "s", "gender": 0, "age_group": 3, "race": race} for race in ["White"] * 80 + ["Black"] * 20 + [None] * 10]
    features = Features({"source": Value("string"), "gender": ClassLabel(names=GENDERS), "age_group": ClassLabel(names=AGE_GROUPS),
                         "race": Value("string")})
    dataset = Dataset.from_list(rows, features=features)
    weights = stratum_weights(dataset, 1.0, by_race=True).numpy()
    share = {race: weights[[r["race"] == race for r in rows]].sum() / weights.sum() for race in ("White", "Black", None)}
    assert share == pytest.approx({"White": 1 / 3, "Black": 1 / 3, None: 1 / 3})
    assert np.allclose(stratum_weights(dataset, 1.0).numpy(), 1 / 110)  # without race: one stratum


def test_the_trainer_samples_balanced_when_asked(tmp_path):
    from genderage.training.config import TrainArguments
    from genderage.training.trainer import GenderAgeTrainer

    args = TrainArguments(output_dir=str(tmp_path), balance_sampling=1.0, use_cpu=True, report_to="none", seed=3)
    trainer = GenderAgeTrainer(model=torch.nn.Linear(1, 1), args=args, train_dataset=mixed_sources())
    sampler = trainer._get_train_sampler()
    drawn = Counter(mixed_sources()[int(i)]["source"] for i in list(iter(sampler)) * 20)
    assert drawn["small"] / sum(drawn.values()) == pytest.approx(2 / 3, abs=0.05)  # 2 of 3 strata are small's
    natural = TrainArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    assert not isinstance(GenderAgeTrainer(model=torch.nn.Linear(1, 1), args=natural, train_dataset=mixed_sources())._get_train_sampler(),
                          torch.utils.data.WeightedRandomSampler)


class Processor:
    """The settings our transforms read from an image processor (as the timm wrapper exposes them)."""

    data_config = {"input_size": (3, 32, 32), "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


def stage_types(args: DataArguments) -> list[type]:
    return [type(t) for t in build_train_transform(Processor(), args).transforms]


def test_every_stage_is_switchable_and_off_at_zero():
    off = DataArguments(scale_min=1.0, hflip=0, rotation=0)
    assert stage_types(off) == [v2.ToImage, v2.RandomResizedCrop, v2.ToDtype, v2.Normalize]
    on = DataArguments(perspective=0.2, color_jitter=0.2, grayscale=0.1, blur=0.2, downscale=0.2, jpeg=0.2, aspect_jitter=0.1)
    types = stage_types(on)
    for stage in (v2.RandomPerspective, v2.ColorJitter, v2.RandomGrayscale, RandomDownscale, v2.RandomAffine):
        assert stage in types
    assert types.count(v2.RandomApply) == 2  # blur and JPEG
    pixels = build_train_transform(Processor(), on)(random_image(1, size=60))
    assert pixels.shape == (3, 32, 32) and pixels.dtype == torch.float32 and -1.0 <= float(pixels.min()) <= float(pixels.max()) <= 1.0


def test_downscale_softens_but_keeps_the_size():
    image = torch.from_numpy(np.array(random_image(2, size=64))).permute(2, 0, 1)
    noise = torch.randint(0, 255, image.shape, dtype=torch.uint8)
    softened = RandomDownscale(p=1.0)(noise)
    assert softened.shape == noise.shape
    assert softened.float().std() < noise.float().std() * 0.8  # detail is gone


@pytest.mark.parametrize("bad", [{"blur": 1.5}, {"jpeg": -0.1}, {"aspect_jitter": 1.0}])
def test_impossible_strengths_are_rejected(bad):
    with pytest.raises(ValueError):
        DataArguments(**bad)


def test_sampling_boost_multiplies_the_named_groups():
    from genderage.training.sampling import boost_factors

    dataset = mixed_sources()
    factors = boost_factors(dataset, "age_group=0-2:3, source=small:2").numpy()
    rows = list(dataset)
    assert factors[[r["age_group"] == 0 for r in rows]] == pytest.approx(6.0)  # small and 0-2: 3 × 2
    assert factors[[r["age_group"] == 8 for r in rows]] == pytest.approx(2.0)
    assert factors[[r["source"] == "big" for r in rows]] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="COLUMN=VALUE:FACTOR"):
        boost_factors(dataset, "ethnicity=x:2")


def test_erase_blacks_out_a_patch():
    from types import SimpleNamespace

    from PIL import Image

    torch.manual_seed(0)
    processor = SimpleNamespace(data_config={"input_size": (3, 32, 32), "mean": (0.0,) * 3, "std": (1.0,) * 3})
    args = SimpleNamespace(aspect_jitter=0.0, framing=0, scale_min=1.0, hflip=0, rotation=0, translate=0, perspective=0,
                           color_jitter=0, grayscale=0, blur=0, downscale=0, jpeg=0, erase=1.0)
    pixels = build_train_transform(processor, args)(Image.new("RGB", (32, 32), (255, 255, 255)))
    black = (pixels == 0).all(dim=0).float().mean().item()
    assert 0.01 < black < 0.2
