"""How well each estimator recovers a collection's share of women, on real labelled photos through the app's path.

Usage:
    python benchmarks/audit_simulation.py --model models/default --data-dir data/mixture_fairface \\
        --test "UTKFace test=originals:utkface" --test "Men/Women=folders=../shared/data/men_women_classification_128px" \\
        [--sets models/default/quantification.json] [--cache runs/audit_sim_faces.json] [--cross "A+B->C"] \\
        [--shares 0.1,0.2,0.5,0.7] [--collections 300] [--size 300] [--rounds 200] [--markdown docs/table.md]

Each labelled set (--test, cross_dataset.py's syntax, through the detect path; or the sets of a quantification.json
with --sets) is split in two halves at random: the model's error rates come from one half, and collections of --size
faces are drawn from the other at each share of women, --collections per share (each face a woman with that
probability, as a collection samples whatever produced its photos). For every estimator: the mean signed and the mean
absolute error against the collection's own share of women, in points; for the adjusted ones, how often the 95%
bootstrap interval (photos and rate photos resampled) holds the share the collection was drawn at, and its own count.
A second table does the age groups: collections at random age shares (Dirichlet, α = 1 and 10), the mean
total-variation distance between estimated and own shares, in points (half the summed absolute errors). --cross "A+B->C" adds a
gender row where the rates come from whole sets A and B and the collections from set C: an audit that relies on the
model's own test sets. --tasks gender or --tasks age_group runs one table only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ESTIMATORS = ("cc", "pcc", "acc", "pacc", "sld")
WITH_INTERVALS = ("acc", "pacc")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--test", action="append", default=[], metavar="NAME=SPEC", help="a labelled set (repeatable)")
    parser.add_argument("--data-dir", help="the prepared dataset that originals:/prepared: specs read")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, help="at most this many photos per --test set")
    parser.add_argument("--sets", help="also the sets of this quantification.json")
    parser.add_argument("--cache", help="a JSON file keeping the --test sets' answers: written once, read after")
    parser.add_argument("--cross", action="append", default=[], metavar="A+B->C", help="rates from whole sets A, B; collections from C")
    parser.add_argument("--shares", default="0.1,0.2,0.5,0.7")
    parser.add_argument("--collections", type=int, default=300)
    parser.add_argument("--size", type=int, default=300, help="faces per collection")
    parser.add_argument("--rounds", type=int, default=200, help="bootstrap rounds per interval")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", default="gender,age_group", help="which tables: gender, age_group or both")
    parser.add_argument("--age-concentrations", default="1,10",
                        help="Dirichlet concentrations of the age shares: 1 spreads them wildly, 10 keeps them near even")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--markdown", help="write the table here")
    args = parser.parse_args(argv)
    if not args.test and not args.sets:
        parser.error("give labelled sets: --test NAME=SPEC and/or --sets QUANTIFICATION_JSON")
    return args


def labelled_sets(args: argparse.Namespace) -> dict:
    """name -> LabelledFaces: --sets, then --test sets (from --cache where it has them)."""
    from genderage.measure.labelled_faces import LabelledFaces, read_quantification

    sets = {s.described: s for s in read_quantification(args.sets)} if args.sets else {}
    cached = {}
    if args.cache and Path(args.cache).is_file():
        cached = {s.described: s for s in read_quantification(args.cache)}
    missing = [(name, spec) for name, spec in (text.split("=", 1) for text in args.test) if name not in cached]
    if missing:
        from genderage.measure.accuracy import predict_path
        from genderage.measure.cross_dataset import load_test_set
        from genderage.serving.faces import FaceDetector
        from genderage.serving.inference import GenderAgeClassifier

        classifier = GenderAgeClassifier.from_pretrained(args.model)
        detector = FaceDetector(chip=classifier.face_chip)
        for name, spec in missing:
            data, _ = load_test_set(spec, args)
            answers = predict_path(classifier, data.images, detector, warm_up=False)
            cached[name] = LabelledFaces.from_answers(name, [str(i) for i in range(len(data.rows))], data.rows,
                                                      answers.predictions, answers.found)
            print(f"{name}: {len(cached[name].photo)} faces found in {len(data.rows)} photos", flush=True)
        if args.cache:
            Path(args.cache).write_text(json.dumps({"sets": [s.to_json() for s in cached.values()]}))
    sets.update({name: cached[name] for name, _ in (text.split("=", 1) for text in args.test)})
    return sets


def gender_faces(faces) -> tuple[np.ndarray, np.ndarray]:
    """(P(female, male), true gender index) of the faces with a known gender."""
    probabilities, truth, _ = faces.task("gender")
    return probabilities, truth


def simulate(rate_faces: tuple, pool: tuple, shares: list[float], args: argparse.Namespace, rng) -> dict:
    """Per share: each estimator's errors (points) and the intervals' coverage."""
    from genderage.measure.quantify import Rates, bootstrap_interval, estimate

    rate_probabilities, rate_truth = rate_faces
    rates = Rates.from_labelled(rate_probabilities, rate_truth)
    probabilities, truth = pool
    women, men = np.flatnonzero(truth == 0), np.flatnonzero(truth == 1)
    result = {}
    for share in shares:
        errors = {method: [] for method in ESTIMATORS}
        covered = {method: 0 for method in WITH_INTERVALS}  # the source's share (what produced the photos)
        covered_own = {method: 0 for method in WITH_INTERVALS}  # the collection's own count
        widths = {method: [] for method in WITH_INTERVALS}
        for _ in range(args.collections):
            # Each face is a woman with probability `share`: a collection is a sample of what produced it.
            n_women = int(rng.binomial(args.size, share))
            chosen = np.concatenate([rng.choice(women, n_women, replace=n_women > len(women)),
                                     rng.choice(men, args.size - n_women, replace=args.size - n_women > len(men))])
            collection, own_share = probabilities[chosen], n_women / args.size
            for method in ESTIMATORS:
                errors[method].append(100 * (estimate(collection, rates, method)[0] - own_share))
            for method in WITH_INTERVALS:
                _, low, high = bootstrap_interval(collection, np.arange(args.size), rate_probabilities, rate_truth, method,
                                                  args.rounds, seed=int(rng.integers(1 << 31)))
                covered[method] += bool(low[0] <= share <= high[0])
                covered_own[method] += bool(low[0] <= own_share <= high[0])
                widths[method].append(100 * (high[0] - low[0]))
        result[share] = {"signed": {m: float(np.mean(e)) for m, e in errors.items()},
                         "absolute": {m: float(np.mean(np.abs(e))) for m, e in errors.items()},
                         "coverage": {m: covered[m] / args.collections for m in WITH_INTERVALS},
                         "coverage_own_count": {m: covered_own[m] / args.collections for m in WITH_INTERVALS},
                         "width": {m: float(np.mean(widths[m])) for m in WITH_INTERVALS}}
    return result


def simulate_age(rate_faces: tuple, pool: tuple, concentration: float, args: argparse.Namespace, rng) -> dict:
    """Age-group composition: collections of --size faces at random age shares (Dirichlet(concentration) over the groups
    the pool has); per estimator, the mean total-variation distance to the collection's own shares, in points."""
    from genderage.measure.quantify import Rates, estimate

    rates = Rates.from_labelled(*rate_faces)
    probabilities, truth = pool
    present = [group for group in range(probabilities.shape[1]) if (truth == group).sum() >= 5]
    distances = {method: [] for method in ESTIMATORS}
    for _ in range(args.collections):
        counts = rng.multinomial(args.size, rng.dirichlet(concentration * np.ones(len(present))))
        chosen = np.concatenate([rng.choice(np.flatnonzero(truth == group), count) for group, count in zip(present, counts)])
        own = np.bincount(truth[chosen], minlength=probabilities.shape[1]) / args.size
        for method in ESTIMATORS:
            distances[method].append(50 * np.abs(estimate(probabilities[chosen], rates, method) - own).sum())
    return {method: float(np.mean(values)) for method, values in distances.items()}


def markdown(results: dict) -> str:
    head = ("| rates → collections | true share of women | " + " | ".join(m.upper() for m in ESTIMATORS)
            + " | " + " | ".join(f"{m.upper()} 95% interval: covers the source's share / the own count (width)" for m in WITH_INTERVALS) + " |")
    lines = [head, "|---" * (2 + len(ESTIMATORS) + len(WITH_INTERVALS)) + "|"]
    for name, per_share in results.items():
        for share, figures in per_share.items():
            cells = [f"{figures['signed'][m]:+.1f} ({figures['absolute'][m]:.1f})" for m in ESTIMATORS]
            cells += [f"{figures['coverage'][m]:.0%} / {figures['coverage_own_count'][m]:.0%} ({figures['width'][m]:.1f})" for m in WITH_INTERVALS]
            lines.append(f"| {name} | {float(share):.0%} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from genderage.data.sources import SourceError

    try:
        sets = labelled_sets(args)
    except (SourceError, ValueError, OSError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    shares = [float(s) for s in args.shares.split(",")]
    rng = np.random.default_rng(args.seed)
    results = {}
    for name, faces in sets.items() if "gender" in args.tasks else ():
        probabilities, truth = gender_faces(faces)
        if len(set(truth)) < 2:
            print(f"{name}: one gender only, skipped")
            continue
        order = rng.permutation(len(truth))
        half_a, half_b = order[: len(order) // 2], order[len(order) // 2 :]
        key = f"{name} half → {name} other half"
        results[key] = simulate((probabilities[half_a], truth[half_a]), (probabilities[half_b], truth[half_b]), shares, args, rng)
        print(key, json.dumps(results[key]), flush=True)
    for text in args.cross if "gender" in args.tasks else ():
        sources, _, target = text.partition("->")
        parts = [gender_faces(sets[s.strip()]) for s in sources.split("+")]
        rate_faces = (np.concatenate([p for p, _ in parts]), np.concatenate([t for _, t in parts]))
        key = f"{sources.strip()} → {target.strip()}"
        results[key] = simulate(rate_faces, gender_faces(sets[target.strip()]), shares, args, rng)
        print(key, json.dumps(results[key]), flush=True)
    ages = {}
    for name, faces in sets.items() if "age_group" in args.tasks else ():
        probabilities, truth, _ = faces.task("age_group")
        if len(set(truth)) < 2:
            print(f"{name}: no age labels, skipped")
            continue
        order = rng.permutation(len(truth))
        half_a, half_b = order[: len(order) // 2], order[len(order) // 2 :]
        for concentration in (float(c) for c in args.age_concentrations.split(",")):
            key = f"{name} half → other half, α = {concentration:g}"
            ages[key] = simulate_age((probabilities[half_a], truth[half_a]), (probabilities[half_b], truth[half_b]),
                                     concentration, args, rng)
            print(key, json.dumps(ages[key]), flush=True)
    age_table = "\n".join(["| age groups: rates → collections, Dirichlet α | " + " | ".join(m.upper() for m in ESTIMATORS) + " |",
                           "|---" * (1 + len(ESTIMATORS)) + "|"]
                          + [f"| {name} | " + " | ".join(f"{figures[m]:.1f}" for m in ESTIMATORS) + " |"
                             for name, figures in ages.items()])
    table = "\n\n".join(([markdown(results)] if results else []) + ([age_table] if ages else []))
    results["age_groups"] = ages
    print("\nShare of women: mean signed error in points (mean absolute error), interval coverage (mean width); age groups: "
          "mean total-variation distance in points\n" + table)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
