"""genderage: messy photo collections → a fine-tuned, honestly measured gender-and-age classifier on the Hub.

One subpackage per flow, each importing only the ones before it:
- `genderage.data`: sources → images → dedup → splits → imagefolder (the prepared ImageFolder) → dataset_card
- `genderage.training`: config → modeling → transforms → trainer → evaluation → calibration → model_card → hub, onnx_export
- `genderage.serving`: inference → faces → analysis → predict, demo, space
- `genderage.measure`: accuracy → stability, contact_sheet → cross_dataset (a saved model measured on any labelled
  photos, through the serving path)
Shared by all: `labels` (the label vocabulary) and the `genderage_metric` evaluate module (`METRIC_MODULE`).
Heavy libraries are imported by the modules that need them, so importing the package stays cheap.
"""

from pathlib import Path

from .labels import from_pipeline

__version__ = "0.1.0"
__all__ = ["METRIC_MODULE", "from_pipeline"]

# An evaluate module is loaded from its folder: evaluate.load(METRIC_MODULE).
METRIC_MODULE = str(Path(__file__).parent / "genderage_metric")
