"""Every shipped recipe warms up for a fraction of the run, so short fine-tunes on small data are not all warm-up."""

import pytest
import yaml

from conftest import REPO, recipe_classes
from genderage.training.config import parse_config

RECIPES = sorted((REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_warmup_is_a_fraction_of_the_run(recipe):
    warmup = yaml.safe_load(recipe.read_text()).get("warmup_steps")
    assert isinstance(warmup, float) and 0 < warmup <= 0.1, f"{recipe.name}: warmup_steps {warmup!r} is not a small fraction"
    training_args = parse_config(["--config", str(recipe), "--data_dir", "x", "--use_cpu", "true"], recipe_classes(recipe))[2]
    # transformers reads warmup_steps < 1 as a ratio of the total steps: 38 steps (2 epochs on ~1,200 faces) warm up
    # for at most 4, 10,000 steps for hundreds.
    assert 1 <= training_args.get_warmup_steps(38) <= 4
    assert training_args.get_warmup_steps(10_000) == round(10_000 * warmup)
