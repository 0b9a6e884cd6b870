"""Contact sheets of the most confident gender mistakes: the crops the model saw, grouped by race (else age group)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from ..labels import GENDERS
from .accuracy import PathAnswers

TILE = 96  # px, the side of each crop's square
MAX_GROUPS = 8
PER_GROUP = 6
GAP = 4
LABEL_WIDTH = 120  # the column naming each row's group
LINE_HEIGHT = 12
CAPTION_LINES = 3  # true gender and age group, race, predicted gender and its probability
TITLE_HEIGHT = 2 * LINE_HEIGHT
BACKGROUND, TILE_BACKGROUND, INK = (255, 255, 255), (224, 224, 224), (0, 0, 0)


@dataclass
class Mistake:
    """One confident gender mistake: which photo, its group, its labels and the wrong answer with its probability."""

    index: int  # position in the test set (and in the answers)
    group: str  # "race=<race>" where the race is known, else "age_group=<group>", else "unknown"
    truth: dict  # the row's gender, age_group and race (None where unknown)
    predicted: str  # the predicted (wrong) gender
    probability: float  # what the model gave the wrong gender


def gender_mistakes(rows: list[dict], answers: PathAnswers) -> list[Mistake]:
    """Every photo with a face whose predicted gender is wrong, the most confident (wrong gender's probability) first."""
    found = []
    for i, (row, prediction, face) in enumerate(zip(rows, answers.predictions, answers.found)):
        if not face or row["gender"] is None or prediction.gender is None:
            continue
        predicted = GENDERS[int(np.argmax([prediction.gender[name] for name in GENDERS]))]  # as the metric scores it
        if predicted == row["gender"]:
            continue
        group = (f"race={row['race']}" if row.get("race")
                 else f"age_group={row['age_group']}" if row.get("age_group") else "unknown")
        found.append(Mistake(i, group, {k: row.get(k) for k in ("gender", "age_group", "race")}, predicted,
                             float(prediction.gender[predicted])))
    return sorted(found, key=lambda m: (-m.probability, m.index))


def select_mistakes(mistakes: list[Mistake], max_groups: int = MAX_GROUPS,
                    per_group: int = PER_GROUP) -> dict[str, list[Mistake]]:
    """Up to `per_group` mistakes in each of up to `max_groups` groups; groups and tiles most confident first."""
    groups: dict[str, list[Mistake]] = {}
    for mistake in sorted(mistakes, key=lambda m: (-m.probability, m.index)):
        if mistake.group not in groups and len(groups) == max_groups:
            continue
        tiles = groups.setdefault(mistake.group, [])
        if len(tiles) < per_group:
            tiles.append(mistake)
    return groups


def sheet_size(groups: int, per_group: int = PER_GROUP, tile: int = TILE) -> tuple[int, int]:
    """The sheet's (width, height) in pixels for `groups` rows (one row saying "none" when there are none)."""
    width = GAP + LABEL_WIDTH + per_group * (tile + GAP)
    height = GAP + TITLE_HEIGHT + max(groups, 1) * (tile + CAPTION_LINES * LINE_HEIGHT + GAP)
    return width, height


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    while text and draw.textlength(text, font=font) > width:
        text = text[:-1]
    return text


def caption(mistake: Mistake) -> list[str]:
    """The tile's caption lines: true gender and age group, race, predicted gender with its probability."""
    truth = mistake.truth
    return [f"true {truth['gender']} {truth['age_group'] or ''}".strip(), truth["race"] or "",
            f"pred {mistake.predicted} {mistake.probability:.0%}"]


def draw_sheet(groups: dict[str, list[Mistake]], inputs: list[Image.Image], title: str = "", per_group: int = PER_GROUP,
               tile: int = TILE, totals: dict[str, int] | None = None) -> Image.Image:
    """One row per group: its name (and, from `totals`, its number of mistakes), then a captioned tile per mistake."""
    font = ImageFont.load_default(size=10)
    sheet = Image.new("RGB", sheet_size(len(groups), per_group, tile), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((GAP, GAP), _fit(draw, title, font, sheet.width - 2 * GAP), fill=INK, font=font)
    row_height = tile + CAPTION_LINES * LINE_HEIGHT + GAP
    top = GAP + TITLE_HEIGHT
    if not groups:
        draw.text((GAP, top), "no gender mistakes among the photos with a face", fill=INK, font=font)
    for row, (group, mistakes) in enumerate(groups.items()):
        y = top + row * row_height
        draw.text((GAP, y), _fit(draw, group, font, LABEL_WIDTH - GAP), fill=INK, font=font)
        if totals is not None:
            count = totals.get(group, len(mistakes))
            draw.text((GAP, y + LINE_HEIGHT), f"{count} mistake{'' if count == 1 else 's'}", fill=INK, font=font)
        for column, mistake in enumerate(mistakes[:per_group]):
            x = GAP + LABEL_WIDTH + column * (tile + GAP)
            face = ImageOps.contain(inputs[mistake.index].convert("RGB"), (tile, tile))
            square = Image.new("RGB", (tile, tile), TILE_BACKGROUND)
            square.paste(face, ((tile - face.width) // 2, (tile - face.height) // 2))
            sheet.paste(square, (x, y))
            for line, text in enumerate(caption(mistake)):
                draw.text((x, y + tile + line * LINE_HEIGHT), _fit(draw, text, font, tile), fill=INK, font=font)
    return sheet


def write_mistakes_sheet(rows: list[dict], answers: PathAnswers, path: str | Path, title: str = "", max_groups: int = MAX_GROUPS,
                         per_group: int = PER_GROUP, tile: int = TILE) -> dict[str, list[Mistake]]:
    """Save the contact sheet of the most confident gender mistakes as a PNG at `path`; return what it shows."""
    mistakes = gender_mistakes(rows, answers)
    groups = select_mistakes(mistakes, max_groups, per_group)
    faces = sum(answers.found)
    heading = f"{title}: " if title else ""
    heading += f"{len(mistakes)} gender mistakes among {faces} photos{' with a face' if answers.detected else ''}, most confident first"
    sheet = draw_sheet(groups, answers.inputs, heading, per_group, tile, Counter(m.group for m in mistakes))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, "PNG")
    return groups
