"""Assemble the Hugging Face Space folder: the app, the package, the model, the vendored face detector."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MODEL_FILES = ("config.json", "model.safetensors", "preprocessor_config.json", "README.md")


def build_space(output: str | Path, model_dir: str | Path, model_id: str | None = None) -> Path:
    """Write a self-contained Space to `output` (replaced if it is an earlier build)."""
    import facenet_pytorch

    output = Path(output)
    if output.exists():
        if not (output / "app.py").exists():
            raise FileExistsError(f"{output} exists and is not a Space build; choose another --output")
        shutil.rmtree(output)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "genderage", output / "genderage", ignore=ignore)
    # Vendored: the wheel's own dependency pins conflict with current torch (MIT licence, weights inside).
    shutil.copytree(Path(facenet_pytorch.__file__).parent, output / "facenet_pytorch", ignore=ignore)
    shutil.copy(REPO / "app.py", output / "app.py")
    shutil.copy(REPO / "space" / "requirements.txt", output / "requirements.txt")
    model_dir = Path(model_dir)
    missing = [name for name in MODEL_FILES[:3] if not (model_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{model_dir} is not a model folder: {missing} missing")
    (output / "models" / "default").mkdir(parents=True)
    for name in MODEL_FILES:
        if (model_dir / name).is_file():
            shutil.copy(model_dir / name, output / "models" / "default" / name)
    header, body = (REPO / "space" / "README.md").read_text().split("---\n", 2)[1:]
    metadata = yaml.safe_load(header)
    metadata["models"] = [model_id] if model_id else []
    (output / "README.md").write_text(f"---\n{yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)}---\n{body}")
    return output
