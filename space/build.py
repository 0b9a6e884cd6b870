"""Build the Hugging Face Space folder and, optionally, check it in a clean environment or upload it.

Usage:
    python space/build.py --output build/space [--model models/default] [--model-id USER/MODEL]
    python space/build.py --output build/space --check          # build, then check it as a Space would run it
    python space/build.py --check build/space                   # check a folder built earlier (no rebuild)
    python space/build.py --output build/space --push USER/SPACE [--dry-run]

--check installs the folder's requirements.txt plus gradio==sdk_version into a fresh venv (a few minutes), starts
app.py from the folder on a free 127.0.0.1 port and checks /predict on a face photo and on a non-image file.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="build/space", help="folder to assemble the Space in")
    parser.add_argument("--model", default="models/default", help="model folder to ship inside the Space")
    parser.add_argument("--model-id", help="the model's Hub id, linked from the Space card")
    parser.add_argument("--check", nargs="?", const="", metavar="FOLDER",
                        help="check the Space in a clean venv: a folder built earlier, or (no value) the one just built")
    parser.add_argument("--push", metavar="SPACE_ID", help="upload the folder as this Space")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="with --push: list what would be uploaded, send nothing")
    args = parser.parse_args(argv)
    from genderage.serving.space import SpaceCheckError, build_space, check_space
    from genderage.training.hub import upload_folder

    if args.check:  # an existing folder: check only
        folder = Path(args.check)
    else:
        try:
            folder = build_space(args.output, args.model, args.model_id)
        except (FileNotFoundError, FileExistsError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"Space folder ready: {folder}")
    if args.check is not None:
        print(f"checking {folder} in a clean environment (a fresh venv takes a few minutes)")
        with tempfile.TemporaryDirectory(prefix="space-check-") as workdir:
            try:
                check_space(folder, workdir)
            except SpaceCheckError as error:
                print(f"check failed: {error}", file=sys.stderr)
                return 1
        print("check passed: the Space installs, starts and answers")
    if args.push:
        print(upload_folder(folder, args.push, "space", private=args.private, dry_run=args.dry_run, space_sdk="gradio"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
