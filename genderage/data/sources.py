"""Readers that turn differently-labelled photo collections into normalised label records.

Each source kind reads labels only (no pixels): file names (`utkface`, `pattern`), folder names
(`folders`) or an annotation file (`csv`, `feedback`). Image checks happen later, in `images.py`.
"""

from __future__ import annotations

import csv
import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..labels import GENDER_ALIASES, normalise_gender, parse_age_label

# Files that document or annotate a collection rather than being photos of it.
ANNOTATION_SUFFIXES = {".md", ".txt", ".tsv", ".csv", ".json", ".jsonl", ".yaml", ".yml"}
UTKFACE_NAME = re.compile(r"^(\d+)_([01])_([0-4])_\d+")
UTKFACE_GENDERS = {"0": "male", "1": "female"}
UTKFACE_RACES = ["White", "Black", "Asian", "Indian", "Others"]
DEFAULT_LICENSES = {
    "utkface": "UTKFace: non-commercial research use only (https://susangg.github.io/UTKFace/)",
    "feedback": "user feedback collected with consent by the genderage app",
}
SOURCE_OPTIONS = ("name", "license", "faces", "train_labels", "map", "regex", "root", "file_col", "gender_col", "age_col",
                  "race_col")
LABEL_KINDS = ("gender", "age")


class SourceError(ValueError):
    """A source that cannot be read at all (wrong path, unknown folder names, bad options)."""


@dataclass
class Record:
    """One input image with its labels, before any pixel is read."""

    source_path: str
    source: str
    gender: str | None = None
    age: int | None = None
    age_group: str | None = None
    race: str | None = None


@dataclass
class SourceSpec:
    """A parsed `--source KIND=PATH[,key=value...]` argument."""

    kind: str
    path: Path
    options: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.options.get("name") or (self.kind if self.kind in ("utkface", "feedback") else self.path.stem)

    @property
    def crop_faces(self) -> bool:
        """`faces=crop`: photos are not face crops; detect the largest face and crop it like a training chip."""
        value = self.options.get("faces", "keep")
        if value not in ("keep", "crop"):
            raise SourceError(f"faces={value!r}: use faces=crop (detect and crop) or faces=keep (default)")
        return value == "crop"

    @property
    def train_labels(self) -> tuple[str, ...]:
        """`train_labels=age` (or `gender`; default both): the labels this source may teach. The others are withheld,
        as unknown: a one-gender source's gender says "photos like these are men", not who is a woman."""
        names = tuple(filter(None, self.options.get("train_labels", "gender+age").replace(",", "+").split("+")))
        if not names or set(names) - set(LABEL_KINDS):
            raise SourceError(f"train_labels={self.options['train_labels']!r}: use gender, age or gender+age")
        return tuple(kind for kind in LABEL_KINDS if kind in names)

    @property
    def license(self) -> str:
        return self.options.get("license") or DEFAULT_LICENSES.get(self.kind, "unknown (set it with license=...)")


@dataclass
class SourceResult:
    """What a reader found: labelled records, inputs it had to drop (bad labels; files that cannot be opened:
    broken links, link loops), and entries it skipped on purpose (hidden, annotation files), each with a reason."""

    records: list[Record] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    withheld: dict[str, int] = field(default_factory=dict)  # 'gender=male': rows whose label train_labels withheld


def parse_source_spec(text: str) -> SourceSpec:
    """Parse `KIND=PATH[,key=value...]`; `regex=` may contain commas, so options split only before known keys."""
    kind, sep, rest = text.partition("=")
    if not sep or not rest:
        raise SourceError(f"--source must look like KIND=PATH, got {text!r}; kinds: {', '.join(READERS)}")
    kind = kind.strip().lower()
    if kind not in READERS:
        raise SourceError(f"unknown source kind {kind!r}; choose one of: {', '.join(READERS)}")
    parts = re.split(rf",(?=(?:{'|'.join(SOURCE_OPTIONS)})=)", rest)
    options = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        options[key] = value
    return SourceSpec(kind=kind, path=Path(parts[0]).expanduser(), options=options)


def read_source(spec: SourceSpec) -> SourceResult:
    """Read one source's labels with the reader for its kind."""
    if not spec.path.exists():
        raise SourceError(f"source {spec.kind}={spec.path}: path does not exist")
    kept = spec.train_labels
    result = READERS[spec.kind](spec)
    if kept != LABEL_KINDS:
        withhold_labels(result, kept)
    return result


def withhold_labels(result: SourceResult, kept: tuple[str, ...]) -> None:
    """Forget the labels a source may not teach (counted in `withheld`); a record left with none is dropped."""
    records = []
    for record in result.records:
        if "gender" not in kept and record.gender is not None:
            key = f"gender={record.gender}"
            result.withheld[key] = result.withheld.get(key, 0) + 1
            record.gender = None
        if "age" not in kept and record.age_group is not None:
            key = f"age_group={record.age_group}"
            result.withheld[key] = result.withheld.get(key, 0) + 1
            record.age, record.age_group = None, None
        if record.gender is None and record.age_group is None:
            result.dropped.append((record.source_path, f"no {' or '.join(kept)} label (train_labels={'+'.join(kept)})"))
        else:
            records.append(record)
    result.records = records


def _list_files(root: Path, result: SourceResult) -> list[Path]:
    """Every candidate image under `root`, sorted; everything else is recorded with a reason, never skipped silently."""
    if not root.is_dir():
        raise SourceError(f"{root} is not a directory")
    files = sorted(_walk(root, result, {os.path.realpath(root)}))
    if not files:
        raise SourceError(f"{root} holds no image files")
    return files


def _walk(folder: Path, result: SourceResult, seen: set[str]):
    """Depth-first over `folder`, following links to folders once (a link back to a folder already read is a loop)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as error:
        result.unreadable.append((str(folder), f"folder cannot be read ({error.strerror})"))
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            mode = path.stat().st_mode  # follows links
        except OSError as error:
            result.unreadable.append((str(path), _stat_error(error, path)))
            continue
        if entry.name.startswith("."):
            result.ignored.append((str(path), "hidden folder (not read)" if stat.S_ISDIR(mode) else "hidden file"))
        elif stat.S_ISDIR(mode):
            real = os.path.realpath(path)
            if real in seen:
                result.ignored.append((str(path), f"link to a folder that is already read ({real}): a loop or a second copy"))
            else:
                seen.add(real)
                yield from _walk(path, result, seen)
        elif not stat.S_ISREG(mode):
            result.unreadable.append((str(path), "not a regular file (a pipe, socket or device)"))
        elif path.suffix.lower() in ANNOTATION_SUFFIXES:
            result.ignored.append((str(path), f"annotation or documentation file ({path.suffix.lower()})"))
        else:
            yield path


def _stat_error(error: OSError, path: Path) -> str:
    if error.errno == errno.ELOOP:
        return "symbolic link loop"
    if path.is_symlink() and error.errno == errno.ENOENT:
        return f"broken symbolic link (its target {os.readlink(path)!r} does not exist)"
    return f"cannot be read ({error.strerror})"


def _gender_aliases(spec: SourceSpec) -> dict[str, str]:
    """The `map=folder:gender;...` override, lower-cased."""
    aliases = {}
    for pair in filter(None, spec.options.get("map", "").split(";")):
        key, _, value = pair.partition(":")
        gender = normalise_gender(value)
        if gender is None:
            raise SourceError(f"map={spec.options['map']!r}: {value!r} is not a gender (female/male)")
        aliases[key.strip().lower()] = gender
    return aliases


def read_utkface(spec: SourceSpec) -> SourceResult:
    """UTKFace: `{age}_{gender}_{race}_{datetime}.jpg.chip.jpg`, gender 0 male / 1 female, race 0-4."""
    result = SourceResult()
    for path in _list_files(spec.path, result):
        match = UTKFACE_NAME.match(path.name)
        if not match:
            result.dropped.append((str(path), "file name does not match {age}_{gender}_{race}_{datetime}"))
            continue
        age = int(match.group(1))
        result.records.append(
            Record(str(path), spec.name, UTKFACE_GENDERS[match.group(2)], age, parse_age_label(str(age))[1],
                   UTKFACE_RACES[int(match.group(3))])
        )
    return result


def read_folders(spec: SourceSpec) -> SourceResult:
    """One folder per class: gender folders (`men/`, `Woman/`...), age-group folders (`20-29/`), or nested."""
    result = SourceResult()
    aliases = _gender_aliases(spec)
    unknown: set[str] = set()
    for path in _list_files(spec.path, result):
        folders = path.relative_to(spec.path).parts[:-1]
        if not folders:
            result.dropped.append((str(path), "image is not inside a class folder"))
            continue
        record = Record(str(path), spec.name)
        for folder in folders:
            gender = normalise_gender(folder, aliases)
            age, age_group = parse_age_label(folder)
            if gender:
                record.gender = gender
            elif age_group:
                record.age, record.age_group = age, age_group
            else:
                unknown.add(folder)
        result.records.append(record)
    if unknown:
        raise SourceError(
            f"{spec.path}: folder names that are neither a gender nor an age group: {sorted(unknown)}. "
            f"Known gender names: {sorted(GENDER_ALIASES)}; age groups look like 20-29 or 70+. "
            "Map others with map=NAME:female;NAME:male"
        )
    return result


def _find_column(header: list[str], wanted: str | None, candidates: tuple[str, ...], spec: SourceSpec) -> str | None:
    if wanted:
        if wanted not in header:
            raise SourceError(f"{spec.path}: column {wanted!r} not found; columns are {header}")
        return wanted
    return next((c for c in candidates if c in header), None)


def read_csv(spec: SourceSpec) -> SourceResult:
    """An annotation file (FairFace style `file,age,gender,race`); paths are relative to the file or `root=`."""
    result = SourceResult()
    if not spec.path.is_file():
        raise SourceError(f"{spec.path} is not a CSV file")
    root = Path(spec.options.get("root") or spec.path.parent)
    aliases = _gender_aliases(spec)
    with spec.path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        file_col = _find_column(header, spec.options.get("file_col"), ("file", "file_name", "filename", "image", "path"), spec)
        gender_col = _find_column(header, spec.options.get("gender_col"), ("gender", "sex"), spec)
        age_col = _find_column(header, spec.options.get("age_col"), ("age", "age_group"), spec)
        race_col = _find_column(header, spec.options.get("race_col"), ("race", "ethnicity"), spec)
        if file_col is None or (gender_col is None and age_col is None):
            raise SourceError(f"{spec.path}: need a file column and a gender or age column; columns are {header}")
        for row in reader:
            path = root / row[file_col]
            gender = normalise_gender(row[gender_col], aliases) if gender_col and row[gender_col] else None
            age, age_group = parse_age_label(row[age_col]) if age_col else (None, None)
            if not path.is_file():
                result.dropped.append((str(path), "listed in the annotation file but not found"))
            elif gender_col and row[gender_col] and gender is None:
                result.dropped.append((str(path), f"unknown gender value {row[gender_col]!r}"))
            elif age_col and row[age_col] and age_group is None:
                result.dropped.append((str(path), f"unknown age value {row[age_col]!r}"))
            elif gender is None and age_group is None:
                result.dropped.append((str(path), "no gender or age label"))
            else:
                race = (row[race_col].strip() or None) if race_col else None
                result.records.append(Record(str(path), spec.name, gender, age, age_group, race))
    return result


def read_pattern(spec: SourceSpec) -> SourceResult:
    """Labels parsed from each file's path (relative to the folder) by `regex=` with named groups
    `gender`, `age` (years or a range), `age_group`, `race`."""
    if "regex" not in spec.options:
        raise SourceError("the pattern source needs regex=... with named groups, e.g. regex=(?P<gender>\\w+)-(?P<age>\\d+)")
    try:
        regex = re.compile(spec.options["regex"])
    except re.error as error:
        raise SourceError(f"regex={spec.options['regex']!r} is not a valid regular expression: {error}") from error
    if not {"gender", "age", "age_group"} & set(regex.groupindex):
        raise SourceError("regex= needs a named group gender, age or age_group")
    result = SourceResult()
    aliases = _gender_aliases(spec)
    for path in _list_files(spec.path, result):
        match = regex.search(path.relative_to(spec.path).as_posix())
        if not match:
            result.dropped.append((str(path), "file name does not match regex"))
            continue
        groups = {k: v for k, v in match.groupdict().items() if v}
        gender = normalise_gender(groups["gender"], aliases) if "gender" in groups else None
        age, age_group = parse_age_label(groups.get("age") or groups.get("age_group") or "")
        if "gender" in groups and gender is None:
            result.dropped.append((str(path), f"unknown gender value {groups['gender']!r}"))
        elif gender is None and age_group is None:
            result.dropped.append((str(path), "no gender or age label in the file name"))
        else:
            result.records.append(Record(str(path), spec.name, gender, age, age_group, groups.get("race")))
    return result


FEEDBACK_FILE = "feedback.csv"
FEEDBACK_COLUMNS = ["file_name", "gender", "age_group", "predicted_gender", "predicted_age_group", "timestamp"]


def read_feedback(spec: SourceSpec) -> SourceResult:
    """The app's consented corrections: a folder with `feedback.csv` (see FEEDBACK_COLUMNS) and the images."""
    table = spec.path / FEEDBACK_FILE
    if not table.is_file():
        raise SourceError(f"{spec.path} has no {FEEDBACK_FILE}; point --source feedback= at the app's feedback folder")
    options = {"file_col": "file_name", "gender_col": "gender", "age_col": "age_group", **spec.options}
    return read_csv(SourceSpec("feedback", table, {**options, "name": spec.name, "root": str(spec.path)}))


READERS: dict[str, Callable[[SourceSpec], SourceResult]] = {
    "utkface": read_utkface,
    "folders": read_folders,
    "csv": read_csv,
    "pattern": read_pattern,
    "feedback": read_feedback,
}

__all__ = ["Record", "SourceSpec", "SourceResult", "SourceError", "parse_source_spec", "read_source"]
