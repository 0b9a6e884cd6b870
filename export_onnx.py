"""Export a saved model folder to ONNX Runtime's format: writes FOLDER/model.onnx (logits, dynamic batch).

Usage: python export_onnx.py models/default [more folders ...] [--int8 data/mixture [--calibration_images 300]]
       python export_onnx.py --mtcnn genderage/serving/weights
Inference (`GenderAgeClassifier`, the app, predict.py) then uses ONNX Runtime automatically. Re-run it whenever
the folder's weights change: a model.onnx exported from other weights is ignored (with a warning).
--int8 DATA_DIR quantises the export, calibrated on faces from that prepared dataset's train split: faster on a
CPU for ResNets, answers within a few hundredths of the fp32 ones (docs/experiments.md); not for EfficientNets.
--mtcnn FOLDER writes the MTCNN face detector's three networks (from facenet-pytorch, needs torch) as ONNX files: the
fallback detector then runs on ONNX Runtime; the package ships them in genderage/serving/weights.
"""

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", help="model folders written by train.py (or any transformers image classifier)")
    parser.add_argument("--int8", metavar="DATA_DIR", help="quantise to int8, calibrated on this prepared dataset's train split")
    parser.add_argument("--calibration_images", type=int, default=300, help="faces drawn at random for --int8 (default 300)")
    parser.add_argument("--mtcnn", metavar="FOLDER", help="write MTCNN's pnet/rnet/onet.onnx into this folder")
    args = parser.parse_args(argv)
    if not args.folders and not args.mtcnn:
        parser.error("give at least one model folder (or --mtcnn FOLDER)")
    from genderage.training.onnx_export import export_mtcnn, export_onnx, quantize_onnx

    if args.mtcnn:
        print("\n".join(map(str, export_mtcnn(args.mtcnn))))

    faces = None
    if args.int8:
        from genderage.data.labelled import from_prepared

        try:
            faces = from_prepared(args.int8, "train", args.calibration_images).images
        except (OSError, ValueError, KeyError) as error:
            print(f"error: --int8 {args.int8}: not a prepared dataset with a train split ({error})", file=sys.stderr)
            return 2
    for folder in args.folders:
        try:
            path = export_onnx(folder)
            if faces is not None:
                path = quantize_onnx(folder, faces)
            print(path)
        except (OSError, ValueError) as error:
            print(f"error: {folder}: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
