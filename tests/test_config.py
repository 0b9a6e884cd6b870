import pytest

from conftest import REPO, recipe_classes
from genderage.training.config import load_recipe, parse_config


def test_every_shipped_recipe_parses():
    for recipe in sorted((REPO / "configs").glob("*.yaml")):
        classes = recipe_classes(recipe)
        first, data_args, training_args = parse_config(["--config", str(recipe), "--data_dir", "x", "--use_cpu", "true"], classes)
        assert data_args.task and training_args.output_dir
        assert first.teacher if classes[0].__name__ == "DistilArguments" else first.model_name_or_path or first.timm_architecture


def test_cli_overrides_the_recipe(tmp_path):
    model_args, data_args, training_args = parse_config(
        ["--config", str(REPO / "configs" / "tiny.yaml"), "--learning_rate", "0.5", "--task", "gender", "--image_size", "64", "--output_dir", str(tmp_path)]
    )
    assert training_args.learning_rate == 0.5 and data_args.task == "gender" and model_args.image_size == 64
    assert training_args.num_train_epochs == 1  # untouched recipe value
    assert training_args.remove_unused_columns is False


def test_persistent_workers_turn_pinned_memory_off():
    # resnet50.yaml's persistent workers with the default pinned memory would stall the process's exit on GPU machines.
    recipe = ["--config", str(REPO / "configs" / "resnet50.yaml"), "--data_dir", "x", "--use_cpu", "false", "--bf16", "false"]
    assert parse_config(recipe)[2].dataloader_pin_memory is False
    assert parse_config([*recipe, "--dataloader_persistent_workers", "false"])[2].dataloader_pin_memory is True


def test_unknown_recipe_keys_are_rejected(tmp_path):
    (tmp_path / "bad.yaml").write_text("timm_architecture: test_resnet\nlearning_rat: 0.1\n")
    with pytest.raises(ValueError, match=r"unknown keys .*\['learning_rat'\]"):
        load_recipe(tmp_path / "bad.yaml")


@pytest.mark.parametrize("args,message", [(["--task", "height"], "is not one of"), (["--model_name_or_path", "x/y"], "exactly one of")])
def test_invalid_settings_fail_with_a_message(args, message):
    with pytest.raises(ValueError, match=message):
        parse_config(["--config", str(REPO / "configs" / "tiny.yaml"), *args])


def test_train_cli_prints_errors_without_traceback(tmp_path, capsys):
    import train

    assert train.main(["--config", str(REPO / "configs" / "tiny.yaml"), "--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "o")]) == 2
    assert "not a prepared dataset" in capsys.readouterr().err


def test_help_survives_a_percent_sign_in_a_help_text(capsys):
    """argparse formats help texts with %: a field written "30% of images" must not crash --help."""
    from dataclasses import dataclass, field

    @dataclass
    class Odd:
        share: float = field(default=0.3, metadata={"help": "Applied to 30% of images (%% stays, %(default)s too)."})

    with pytest.raises(SystemExit) as exit_info:
        parse_config(["--help"], (Odd,), description="Usage: odd.py")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "Usage: odd.py" in out and "Applied to 30% of images (% stays, 0.3 too)." in out


def test_unknown_flag_is_named(tmp_path):
    with pytest.raises(ValueError, match="unrecognized arguments: --learning_rat"):
        parse_config(["--config", str(REPO / "configs" / "tiny.yaml"), "--learning_rat", "0.1", "--output_dir", str(tmp_path)])
