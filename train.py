r"""Fine-tune a gender/age image classifier on a prepared dataset.

Usage:
    python train.py --config configs/efficientnet_lite0.yaml --data_dir data/utkface --output_dir runs/lite0
    accelerate launch --config_file configs/accelerate/multi_gpu.yaml train.py --config configs/resnet50.yaml \
        --data_dir data/utkface --output_dir runs/resnet50 [--key value ...]

Every key of the YAML recipe can be overridden with --key value.
"""

import logging
import sys


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 1 or argv == []:
        print(__doc__, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from genderage.training.config import parse_config
    from genderage.training.trainer import run_training

    try:
        model_args, data_args, training_args = parse_config(argv, description=__doc__)
        if not data_args.data_dir:
            raise ValueError("--data_dir is required: a folder written by prepare_dataset.py")
        run_training(model_args, data_args, training_args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
