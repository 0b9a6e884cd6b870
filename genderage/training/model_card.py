"""The model card: Hub metadata (with model-index), usage, data and licences, results per group, limitations."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..data.imagefolder import face_chip_of
from ..labels import AGE_GROUPS
from .config import DataArguments, ModelArguments, TrainArguments
from .evaluation import PLOTS

CARD_METRICS = ("gender_accuracy", "gender_macro_f1", "age_group_accuracy", "age_group_one_off_accuracy", "age_mae", "joint_accuracy")


def sampling_text(training_args: TrainArguments) -> str:
    """How training drew its images: natural frequencies, or the balanced strata and their weighting."""
    if not training_args.balance_sampling:
        return f"natural frequencies, then {training_args.sampling_boost} (group: factor)" if training_args.sampling_boost else "natural frequencies"
    race = " × race (where a source labels it)" if training_args.balance_by_race else ""
    boost = f", then {training_args.sampling_boost} (group: factor)" if training_args.sampling_boost else ""
    return f"source × gender × age-group{race} strata weighted by size^-{training_args.balance_sampling}{boost}"


def robustness_text(training_args: TrainArguments) -> str:
    """The options that keep a fine-tune close to its start and its answers stable, in words."""
    parts = [text.format(getattr(training_args, name)) for name, off, text in (
        ("linear_probe", False, "a linear probe fitted to convergence on the frozen backbone first (LP-FT)"),
        ("layer_decay", 1.0, "layer-wise learning-rate decay {}"),
        ("consistency_weight", 0.0, "mirror-and-framing consistency term, weight {}"),
        ("l2sp_weight", 0.0, "L2-SP towards the starting weights, weight {}"),
    ) if getattr(training_args, name) != off]
    return ", ".join(parts) or "none"


def augmentation_text(data_args: DataArguments) -> str:
    """The training augmentation stages that were on, in words."""
    stages = [f"random resized crop (scale {data_args.scale_min}–1, aspect 1±{data_args.aspect_jitter})"]
    for name, text in (("hflip", "horizontal flip p={}"), ("rotation", "rotation ±{}°"), ("translate", "shift {}"),
                       ("perspective", "perspective {}"), ("color_jitter", "colour jitter {}"), ("grayscale", "greyscale p={}"),
                       ("blur", "blur p={}"), ("downscale", "downscale-upscale p={}"), ("jpeg", "JPEG re-compression p={}"),
                       ("erase", "black patch p={}"), ("framing", "re-framing (0.9–{framing_scale}×, shift ±{framing_shift}) p={}")):
        if getattr(data_args, name):
            stages.append(text.format(getattr(data_args, name), framing_scale=data_args.framing_scale, framing_shift=data_args.framing_shift))
    return ", ".join(stages)


def _dataset_info(data_dir: str | None) -> tuple[str, str]:
    """Dataset name and source licences from the prepared dataset's report."""
    import json

    report_path = Path(data_dir or "") / "report.json"
    if not report_path.is_file():
        return "unknown", "- unknown"
    report = json.loads(report_path.read_text())
    licences = "\n".join(f"- **{name}**: {info['license']} ({info['kept']} images){_label_use(info)}"
                         for name, info in report["sources"].items())
    return "+".join(report["sources"]), licences


def _group_table(metrics: dict, column: str, values: list[str]) -> str:
    names = [n for n in ("gender_accuracy", "age_group_accuracy", "age_group_one_off_accuracy", "age_mae") if f"{n}/{column}={values[0]}" in metrics or any(f"{n}/{column}={v}" in metrics for v in values)]
    lines = [f"| {column} | n | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
    for value in values:
        if f"n/{column}={value}" in metrics:
            cells = [f"{metrics[f'{n}/{column}={value}']:.3f}" if f"{n}/{column}={value}" in metrics else "" for n in names]
            lines.append(f"| {value} | {metrics[f'n/{column}={value}']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def base_model_id(model_args: ModelArguments) -> str | None:
    """The Hub id this model was fine-tuned from: the timm weights' id, or what a local starting point's card says."""
    if model_args.timm_architecture:
        if not model_args.pretrained_weights:
            return None  # random initialisation
        import timm

        return timm.create_model(model_args.timm_architecture, pretrained=False).pretrained_cfg.get("hf_hub_id")
    local_card = Path(model_args.model_name_or_path) / "README.md"
    if local_card.is_file():
        return ModelCard.load(local_card).data.to_dict().get("base_model")
    return None if Path(model_args.model_name_or_path).exists() else model_args.model_name_or_path


def _label_use(info: dict) -> str:
    """A source that taught only some of its labels (`train_labels`), and the photos it held out, in words."""
    text = ""
    if info.get("withheld"):
        text += (f"; trained on its **{info['train_labels']}** labels only: its other labels were withheld as unknown "
                 f"({', '.join(f'{k} ×{n}' for k, n in sorted(info['withheld'].items()))}), and its rows taught the "
                 "model through the marginal likelihood of the labels they have")
    if info.get("held_out"):
        text += f"; {info['held_out']} photos held out of training (the dataset's `holdout/` list)"
    return text


def build_model_card(model_args: ModelArguments, data_args: DataArguments, training_args: TrainArguments,
                     results: dict, train_size: int) -> ModelCard:
    base_model = base_model_id(model_args)
    started_from = model_args.model_name_or_path or f"timm {model_args.timm_architecture} ({model_args.pretrained_weights or 'random init'})"
    dataset_name, licences = _dataset_info(data_args.data_dir)
    chip = face_chip_of(data_args.data_dir) if data_args.data_dir else None
    framing = (f"Feed a face chip cut like the training data: aligned on five landmarks (eyes, nose, mouth corners) like "
               f"dlib's chips (`face_chip: {chip}` in config.json; `genderage.serving.faces.FaceDetector(chip=\"{chip}\")` "
               f"cuts them); `app.py` detects and cuts faces so for you." if chip else
               "Feed a face crop framed like the training data (a tight, roughly centred face); `app.py` detects and crops\n"
               "faces for you.")
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-classification",
        base_model=base_model,
        datasets=[dataset_name],
        license="other",
        tags=["image-classification", "gender", "age", "faces", "genderage"],
        model_name=Path(training_args.output_dir).name,
        eval_results=eval_results(results, dataset_name),
    )
    content = f"""---
{data.to_yaml()}
---

# {data.model_name}

Predicts perceived **gender** (female/male) and **age group** (FairFace bins {', '.join(AGE_GROUPS)}) from a face
photo. Task `{data_args.task}`{" (one head over 18 joint labels like `female, 20-29`; marginal gender and age-group probabilities are sums of the joint ones)" if data_args.task == "gender_age" else ""}.
Fine-tuned from `{started_from}` with [genderage](https://github.com/genderage/genderage).

## How to use

```python
from transformers import pipeline

classifier = pipeline("image-classification", model="PATH_OR_HUB_ID")
predictions = classifier("face.jpg", top_k=classifier.model.config.num_labels)
```

{framing}

## Intended and out-of-scope uses
Intended: research and demonstrations of perceived-attribute classification, and measuring where such models fail.
Out of scope: any decision about a person (hiring, access, policing, moderation, age verification), inferring
anyone's gender identity, surveillance, or use on people who have not agreed to it.

## Training data and licences
Dataset `{dataset_name}` prepared with `prepare_dataset.py` ({train_size} training images). Licences:
{licences}

A model trained on research-only data inherits that restriction: **research, non-commercial use only** unless
every source's licence allows more.

## Preprocessing and hyperparameters
Resolution {model_args.image_size or "model default"} px; evaluation preprocessing is the saved image processor.
Augmentation: {augmentation_text(data_args)}.
Sampling: {sampling_text(training_args)}.
Epochs {training_args.num_train_epochs}, batch size {training_args.per_device_train_batch_size} per device,
learning rate {training_args.learning_rate} (backbone × {training_args.backbone_lr_scale}), scheduler
{getattr(training_args.lr_scheduler_type, 'value', training_args.lr_scheduler_type)}, warm-up {training_args.warmup_steps}, weight decay {training_args.weight_decay},
label smoothing {training_args.label_smoothing_factor}, frozen-backbone epochs {training_args.freeze_backbone_epochs},
class weights {training_args.class_weights}, seed {training_args.seed}.
Robust fine-tuning: {robustness_text(training_args)}.

## Results

{results_markdown(results)}

## Limitations and bias
- The labels are dataset annotations of binary *perceived* gender, not anyone's identity; the model cannot
  represent non-binary people and will be wrong about many people.
- Accuracy is lower for young children (gender is hard to perceive), the elderly, and groups that are
  under-represented in the training data; the per-group tables above show where. Age is predicted as a group;
  the expected age is a rough estimate.
- Trained on tight face crops: whole-body or group photos must go through face detection first.
"""
    return ModelCard(content)


def eval_results(results: dict, dataset_name: str) -> list[EvalResult]:
    """The card's model-index: the test split's headline metrics."""
    test = results["test"]["metrics"]
    return [EvalResult(task_type="image-classification", dataset_type=dataset_name, dataset_name=dataset_name,
                       dataset_split="test", metric_type=name, metric_name=name.replace("_", " "), metric_value=round(test[name], 4))
            for name in CARD_METRICS if name in test]


def results_markdown(results: dict) -> str:
    """The card's Results section: validation and test overall, the test set per group, the worst slices, the plots."""
    test = results["test"]["metrics"]
    races = sorted({k.split("race=", 1)[1] for k in test if k.startswith("n/race=")})
    sources = sorted({k.split("source=", 1)[1] for k in test if k.startswith("n/source=")})
    details = results["test"]["details"]
    worst = "\n".join(f"- {k.removeprefix('worst/')}: **{v}**" for k, v in details.items() if k.startswith("worst/"))
    small = details.get("too_small_to_judge")
    overall = "\n".join(f"| {name} | {results['validation']['metrics'].get(name, float('nan')):.4f} | {test[name]:.4f} |"
                        for name in CARD_METRICS if name in test)
    calibrated = results.get("calibration_temperature")
    note = (f"\n\nFigures of the calibrated model (T = {calibrated:.3f} folded into the head), on the prepared splits' "
            "face crops." if calibrated else "")
    return f"""| metric | validation | test |
|---|---|---|
{overall}{note}

Test set, per group (a row counts only for the labels it has):

{_group_table(test, "age_group", AGE_GROUPS)}

{_group_table(test, "race", races) if races else ""}

{_group_table(test, "source", sources) if len(sources) > 1 else ""}

Worst test slices (labelled groups of at least 20 images):
{worst or "- none"}
{f"{chr(10)}Too small to judge (under 20 images): {', '.join(small)}." if small else ""}

![training curves]({PLOTS["curves"]})
![confusion matrix]({PLOTS["confusion"]})
![accuracy by age group]({PLOTS["age_groups"]})"""


def refresh_results(model_dir: str | Path, results: dict) -> None:
    """After the model changed (calibration): metrics.json, evaluation.json, the card's Results and model-index anew."""
    import json

    model_dir = Path(model_dir)
    (model_dir / "metrics.json").write_text(json.dumps({s: r["metrics"] for s, r in results.items() if s in ("validation", "test")}, indent=2))
    (model_dir / "evaluation.json").write_text(json.dumps({s: r["details"] for s, r in results.items() if s in ("validation", "test")}, indent=2))
    card_path = model_dir / "README.md"
    if not card_path.is_file():
        return
    card = ModelCard.load(card_path)
    dataset = (card.data.eval_results or [None])[0]
    card.data.eval_results = eval_results(results, dataset.dataset_name if dataset else "unknown")
    card.data.model_name = card.data.model_name or model_dir.name  # the model-index needs a name
    card.text = replace_section(card.text, "Results", results_markdown(results), before="Calibration")
    card.save(card_path)


def write_model_card(output_dir: Path, *args) -> None:
    build_model_card(*args).save(output_dir / "README.md")


# --- Sections added to an existing card (README.md) by benchmarks/cross_dataset.py and benchmarks/calibrate.py ---

CROSS_DATASET_HEADING = "Cross-dataset results"
CALIBRATION_HEADING = "Calibration"
SECTIONS_BEFORE = "Limitations and bias"  # new sections go before this one (or at the end)
CROSS_DATASET_COLUMNS = (  # (key, header, format)
    ("n", "n", "{}"), ("faces_found_rate", "faces found", "{:.1%}"), ("gender_accuracy", "gender acc.", "{:.1%}"),
    ("age_group_accuracy", "age-group acc.", "{:.1%}"), ("age_group_one_off_accuracy", "age-group one-off acc.", "{:.1%}"),
    ("age_mae", "age MAE", "{:.2f}"), ("gender_ece", "gender ECE", "{:.3f}"), ("age_group_ece", "age-group ECE", "{:.3f}"),
    ("mirror_p_female_delta_p95", "mirror ΔP p95", "{:.3f}"), ("mirror_p_female_delta_max", "mirror ΔP max", "{:.3f}"),
    ("reframe_p_female_delta_p95", "re-framing ΔP p95", "{:.3f}"), ("jpeg_p_female_delta_p95", "JPEG ΔP p95", "{:.3f}"),
)
SLICE_TABLES = (("race", "race"), ("age_group", "age group"))  # (slice column, words) of the per-set tables


def replace_section(text: str, heading: str, body: str, before: str = SECTIONS_BEFORE) -> str:
    """Put `## heading` + body into a markdown card: replace that section if present, else insert it before `## before`."""
    import re

    section = f"## {heading}\n\n{body.strip()}\n\n"
    existing = re.search(rf"^## {re.escape(heading)}[ \t]*\n.*?(?=^## |\Z)", text, flags=re.M | re.S)
    if existing:
        return text[: existing.start()] + section + text[existing.end():].lstrip("\n")
    anchor = re.search(rf"^## {re.escape(before)}\b", text, flags=re.M)
    if anchor:
        return text[: anchor.start()] + section + text[anchor.start():]
    return text.rstrip("\n") + "\n\n" + section


def _slice_table(slices: dict, column: str, words: str) -> list[str]:
    """Gender accuracy by one slice column as a compact table: a column per value, rows n and accuracy."""
    found = {key.split("=", 1)[1] for key in slices if key.startswith(f"gender_accuracy/{column}=")}
    if not found:
        return []
    order = AGE_GROUPS if column == "age_group" else sorted(found - {"unknown"})
    values = [v for v in order if v in found] + sorted(found - set(order))
    return [f"Gender accuracy by {words}:", "", f"| {words} | " + " | ".join(values) + " |", "|---" * (len(values) + 1) + "|",
            "| n | " + " | ".join(str(slices.get(f"n/{column}={v}", "–")) for v in values) + " |",
            "| gender acc. | " + " | ".join(f"{slices[f'gender_accuracy/{column}={v}']:.1%}" for v in values) + " |", ""]


def _set_details(row: dict) -> list[str]:
    """Under the main table, one set's fairness tables, worst group and mistakes sheet (nothing when it has none)."""
    slices = row.get("slices") or {}
    tables = [line for column, words in SLICE_TABLES for line in _slice_table(slices, column, words)]
    age = row.get("age") or {}
    if age.get("age_group_accuracy_by_race"):  # e.g. the FairFace-style hold-out, where only the age is known
        races = list(age["age_group_accuracy_by_race"])
        children = age.get("children_age_group_accuracy")
        tables += [f"Age-group accuracy by race (one-off {age['age_group_one_off_accuracy']:.1%}; children 0-19: "
                   f"{'–' if children is None else f'{children:.1%}'}):", "",
                   "| race | " + " | ".join(races) + " |", "|---" * (len(races) + 1) + "|",
                   "| age-group acc. | " + " | ".join(f"{age['age_group_accuracy_by_race'][r]:.1%}" for r in races) + " |", ""]
    sheet = row.get("mistakes_sheet")
    linked = sheet and not Path(sheet).is_absolute()  # relative: inside the model folder, next to this card
    if not tables and not linked:
        return []
    lines = [f"### {row['name']}", ""] + tables
    if slices:
        worst = row.get("worst_group")
        lines += [f"Worst group (at least 20 photos): **{worst}** ({slices[f'gender_accuracy/{worst}']:.1%} gender acc.)."
                  if worst else "Worst group: none with at least 20 photos.", ""]
    if linked:
        lines += [f"![{row['name']}: most confident gender mistakes]({Path(sheet).as_posix()})", ""]
    return lines


def cross_dataset_markdown(report: dict) -> str:
    """The cross-dataset table (one row per test set), then per set its gender accuracy by race and age group and its mistakes."""
    sources = report.get("training_sources")
    limit = f", at most {report['limit']} images per set" if report.get("limit") else ""
    lines = [(f"Trained on: {', '.join(sources) if sources else 'unknown'}. Path: {report['path']}{limit}; "
              "a face not found counts as wrong; ECE (15 bins) is over images with a face. ΔP p95 / max: 95th percentile / "
              "largest |ΔP(female)| between a photo and its mirror image, the same detected face cropped 1.2× wider and "
              "shifted by a tenth (re-framing: another tool's crop), or its JPEG re-save (quality 75), over photos with "
              "a face in both."), "",
             "| test set | trained on it | " + " | ".join(header for _, header, _ in CROSS_DATASET_COLUMNS) + " |",
             "|---|---|" + "---|" * len(CROSS_DATASET_COLUMNS)]
    for row in report["rows"]:
        trained = {True: "yes", False: "no"}.get(row.get("trained_on"), "unknown")
        if row.get("trained_on"):  # a source's held-out split is fair; the whole source includes training images
            trained += ", held-out split" if row.get("held_out_split") else ", whole source (includes training images)"
        cells = [fmt.format(row[key]) if row.get(key) is not None else "–" for key, _, fmt in CROSS_DATASET_COLUMNS]
        lines.append(f"| {row['name']} (`{row['data']}`) | {trained} | " + " | ".join(cells) + " |")
    details = [line for row in report["rows"] for line in _set_details(row)]
    return "\n".join(lines + ([""] + details[:-1] if details else []))


def calibration_markdown(calibration: dict) -> str:
    """What temperature scaling did, from the `calibration` record in config.json."""
    text = (f"Temperature scaling, folded into the classifier head (its weight and bias divided by T), so every "
            f"consumer (`pipeline`, ONNX, the app) gets calibrated probabilities: **T = {calibration['temperature']:.3f}**")
    if calibration.get("class_bias"):
        text += (", with one bias per class (bias-corrected temperature scaling: it undoes the class prior that the "
                 "training's balanced and boosted sampling taught, towards the split's own shares)")
    if "before" in calibration:
        text += f", fitted on {calibration.get('images', '?')} images of the `{calibration.get('split', '?')}` split.\n\n"
        text += "| validation | gender ECE | age-group ECE | NLL (joint) |\n|---|---|---|---|\n"
        for when in ("before", "after"):
            values = calibration[when]
            text += f"| {when} | " + " | ".join(f"{values[k]:.4f}" if k in values else "–" for k in ("gender_ece", "age_group_ece", "nll")) + " |\n"
    return text + "\nECE: expected calibration error, 15 equal-width bins of top-class confidence (lower is better)."


def update_card_sections(model_dir: str | Path, report: dict | None = None) -> Path:
    """Insert or replace the "Cross-dataset results" (from `report`) and "Calibration" (from config.json) sections."""
    from .calibration import read_calibration

    card = Path(model_dir) / "README.md"
    text = card.read_text() if card.is_file() else f"# {Path(model_dir).name}\n"
    if report is not None:
        text = replace_section(text, CROSS_DATASET_HEADING, cross_dataset_markdown(report))
    calibration = read_calibration(model_dir)
    if calibration is not None:
        text = replace_section(text, CALIBRATION_HEADING, calibration_markdown(calibration))
    card.write_text(text)
    return card
