"""An audit's report.md and composition.png, from its summary.json (genderage.measure.audit.summarise)."""

from __future__ import annotations

from pathlib import Path

from ..labels import AGE_GROUPS, GENDERS
from .labelled_faces import SAMPLE_PREFIX

MANY_WITHOUT_FACE = 0.2  # above this share of photos without a face, the collection looks unlike the measured sets
MANY_UNCERTAIN = 0.15  # above this share of uncertain gender answers, likewise
ESTIMATOR_WORDS = {
    "pacc": "PACC (the mean probabilities, corrected by the model's mean probabilities per true class)",
    "acc": "ACC (the argmax count, corrected by the model's confusion rates)",
    "sld": "SLD/EMQ (the probabilities re-weighted to the collection's prior by EM)",
    "pcc": "PCC (the mean of the faces' probabilities, unadjusted)",
    "cc": "CC (the argmax count, unadjusted)",
}


def _share(value: dict | None) -> str:
    if value is None:
        return "–"
    if value["low"] is None:  # no interval (no rates)
        return f"{value['estimate']:.1%}"
    return f"{value['estimate']:.1%} [{value['low']:.1%}–{value['high']:.1%}]"


def warnings_for(summary: dict) -> list[str]:
    """Plain warnings where the estimates may not hold."""
    overall, found = summary["overall"], []
    if summary["rates_from"] is None:
        found.append("No labelled faces were available (no quantification.json in the model folder and no --labelled), "
                     "so the shares are sums of probabilities, not adjusted for the model's errors, and have no interval.")
    elif summary["rates_from"].startswith(SAMPLE_PREFIX):
        if summary["labelled_faces"] < 200:
            found.append(f"Only {summary['labelled_faces']} labelled faces stand behind the rates: the intervals are wide.")
    else:
        found.append(f"The model's error rates come from its own test sets ({summary['rates_from']}); they hold for photos "
                     "like those. For a collection unlike them, give a labelled sample of it with --labelled.")
    photos = max(1, overall["n_photos"])
    if overall["photos_without_face"] / photos > MANY_WITHOUT_FACE:
        found.append(f"{overall['photos_without_face'] / photos:.0%} of the photos had no face found: they may be unlike "
                     "the photos the model was measured on (small, turned or covered faces), and the faces found may not "
                     "represent the rest.")
    if overall.get("uncertain_share", 0) > MANY_UNCERTAIN:
        found.append(f"{overall['uncertain_share']:.0%} of the gender answers are uncertain (below {summary['uncertain_below']:.0%}): "
                     "the collection looks harder for the model than its test sets.")
    if overall["unusable_files"]:
        found.append(f"{overall['unusable_files']} files could not be used as photos; faces.parquet gives each one's reason.")
    return found


def report_markdown(summary: dict) -> str:
    overall = summary["overall"]
    lines = ["# Audit of a photo collection", "",
             f"{overall['n_photos']} photos, {overall['n_faces']} faces found ({overall['faces_per_photo']} per usable photo), "
             f"{overall['photos_without_face']} photos without a face, {overall['unusable_files']} unusable files. "
             f"Model: `{summary['model']}`.", ""]
    method = ESTIMATOR_WORDS.get(summary["estimator"], summary["estimator"].upper())
    how = (f"Estimated with {method}, with a 95% bootstrap interval (photos and labelled photos resampled)."
           if summary["rates_from"] else "Sums of the faces' probabilities (PCC), not adjusted for the model's errors; no interval.")
    lines += ["## Share of women and men", "",
              f"{how} The argmax count (each face's likelier answer, counted) is shown for contrast: it is biased whenever the "
              "collection's shares differ from those the model was measured on.", "",
              "| | women | men | women, argmax count | faces |", "|---|---|---|---|---|",
              f"| overall | {_share(overall['share_female'])} | {_share(overall.get('share_male'))} | "
              f"{_percent(overall['share_female_argmax'])} | {overall['n_faces']} |"]
    for name, group in summary.get("groups", {}).items():
        lines.append(f"| {summary['by']} = {name} | {_share(group['share_female'])} | {_share(group.get('share_male'))} | "
                     f"{_percent(group['share_female_argmax'])} | {group['n_faces']} |")
    age_method = (overall.get("estimators") or {}).get("age_group", summary["estimator"])
    if age_method == "pcc":
        age_how = ("The mean of the faces' probabilities (PCC), not adjusted for the model's errors: with nine classes, no "
                   "adjustment measured better (docs/audit.md). The interval resamples the photos only; the shares lean "
                   "towards the age mix the model was calibrated on.")
    else:
        age_how = f"Estimated with {ESTIMATOR_WORDS.get(age_method, age_method.upper())}; nine classes make wider intervals than two."
    lines += ["", "## Age groups", "", age_how, "", "| age group | share | argmax count |", "|---|---|---|"]
    if overall["age_group"]:
        lines += [f"| {group} | {_share(overall['age_group'][group])} | {_percent(overall['age_group_argmax'][group])} |"
                  for group in AGE_GROUPS]
    if summary.get("groups"):
        lines += ["", f"Per {summary['by']} (estimate):", "",
                  f"| {summary['by']} | " + " | ".join(AGE_GROUPS) + " |", "|---" * (len(AGE_GROUPS) + 1) + "|"]
        for name, group in summary["groups"].items():
            cells = [f"{group['age_group'][a]['estimate']:.0%}" if group["age_group"] else "–" for a in AGE_GROUPS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if overall["joint"]:
        lines += ["", "## Gender × age group", "", "| age group | " + " | ".join(GENDERS) + " |", "|---|---|---|"]
        lines += [f"| {a} | " + " | ".join(_share(overall["joint"][f"{g}, {a}"]) for g in GENDERS) + " |" for a in AGE_GROUPS]
    lines += ["", "## Where the error rates come from", "",
              f"{summary['rates_from'] or 'nowhere (no labelled faces)'}: {summary['labelled_faces']} labelled faces.",
              f"{overall.get('uncertain_share', 0):.1%} of the gender answers here are uncertain (below {summary['uncertain_below']:.0%})."]
    measured = summary.get("model_measured") or {}
    if measured:
        lines += ["", "The model as measured on its test sets (its card):", "",
                  "| test set | gender accuracy | age-group accuracy | gender ECE | faces found | worst group (gender accuracy) |",
                  "|---|---|---|---|---|---|"]
        for name, figures in measured.items():
            worst = figures.get("worst_group")
            worst_text = f"{worst} ({figures['worst_group_gender_accuracy']:.1%})" if worst else "–"
            lines.append(f"| {name} | {_percent(figures.get('gender_accuracy'))} | {_percent(figures.get('age_group_accuracy'))} | "
                         f"{_number(figures.get('gender_ece'))} | {_percent(figures.get('faces_found_rate'))} | {worst_text} |")
    found = warnings_for(summary)
    if found:
        lines += ["", "## Warnings", ""] + [f"- {text}" for text in found]
    lines += ["", "![composition](composition.png)", ""]
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def plot_composition(summary: dict, path: str | Path) -> None:
    """The share of women (overall and per group) and the age groups, each with its interval and the argmax count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {"overall": summary["overall"], **summary.get("groups", {})}
    groups = {name: g for name, g in groups.items() if g["share_female"] is not None}
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, max(3.5, 0.45 * len(groups) + 1.5)))
    names = list(groups)[::-1]
    for row, name in enumerate(names):
        share = groups[name]["share_female"]
        error = None if share["low"] is None else [[share["estimate"] - share["low"]], [share["high"] - share["estimate"]]]
        left.errorbar(share["estimate"], row, xerr=error, fmt="o", color="tab:purple", capsize=4,
                      label="estimate, 95% interval" if row == 0 else None)
        left.plot(groups[name]["share_female_argmax"], row, "x", color="grey", label="argmax count" if row == 0 else None)
    left.set_yticks(range(len(names)), [name if name == "overall" else f"{summary['by']}={name}" for name in names])
    left.set_xlim(0, 1)
    left.set_xlabel("share of women among the faces")
    left.axvline(0.5, color="lightgrey", linewidth=1, zorder=0)
    if groups:
        left.legend(loc="lower right", fontsize=8)
    else:
        left.text(0.5, 0.5, "no faces found", ha="center", va="center", transform=left.transAxes)
    overall = summary["overall"]
    if overall["age_group"]:
        estimates = [overall["age_group"][a]["estimate"] for a in AGE_GROUPS]
        lows = [overall["age_group"][a]["low"] for a in AGE_GROUPS]
        highs = [overall["age_group"][a]["high"] for a in AGE_GROUPS]
        error = None if lows[0] is None else [[e - lo for e, lo in zip(estimates, lows)], [hi - e for e, hi in zip(estimates, highs)]]
        right.bar(AGE_GROUPS, estimates, yerr=error, color="tab:orange", capsize=3, label="estimate, 95% interval")
        right.plot(AGE_GROUPS, [overall["age_group_argmax"][a] for a in AGE_GROUPS], "x", color="grey", label="argmax count")
        right.legend(fontsize=8)
    age_method = (overall.get("estimators") or {}).get("age_group", summary["estimator"])
    right.set_xlabel(f"age group (overall, {age_method.upper()}{', unadjusted' if age_method in ('pcc', 'cc') else ''})")
    right.set_ylabel("share of faces")
    figure.suptitle(f"{overall['n_faces']} faces in {overall['n_photos']} photos; {summary['estimator'].upper()}"
                    + (f", rates from {summary['rates_from']}" if summary["rates_from"] else ", unadjusted"), fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(summary: dict, output: str | Path) -> None:
    """OUTPUT/summary.json's companions: report.md and composition.png."""
    output = Path(output)
    (output / "report.md").write_text(report_markdown(summary))
    plot_composition(summary, output / "composition.png")
