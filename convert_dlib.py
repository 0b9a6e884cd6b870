"""Turn dlib's face-recognition ResNet (CC0, ~3M faces) into a face-pretrained transformers ResNet for train.py.

Usage:
    pip install face_recognition_models==0.3.0   # the .dat file (or pass --teacher PATH/dlib_face_recognition_resnet_model_v1.dat)
    python convert_dlib.py --config configs/dlib_distil.yaml --data_dir data/mixture --output_dir runs/dlib_distil
    python train.py --config configs/dlib_resnet.yaml --data_dir data/mixture --output_dir runs/dlib_resnet

The first command reads the weights from dlib's own file, puts them into a transformers ResNetForImageClassification
and distils dlib's exact network into it on the training faces; stopped, the same command with --resume true
continues. The folder it writes is the second command's model_name_or_path. Every recipe key can be overridden
with --key value.
"""

import logging
import sys


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 1 or argv == []:
        print(__doc__, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from genderage.training.config import parse_config
    from genderage.training.distillation import ARGUMENT_CLASSES, run_distillation

    try:
        distil_args, data_args, training_args = parse_config(argv, ARGUMENT_CLASSES, description=__doc__)
        if not data_args.data_dir:
            raise ValueError("--data_dir is required: a folder written by prepare_dataset.py (its training faces)")
        print(f"student written to {run_distillation(distil_args, data_args, training_args)}")
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
