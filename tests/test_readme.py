"""The README opens with "Try it", stays short, and every figure it quotes of the shipped model is the model folder's own
(metrics.json, config.json, the card's cross-dataset table), so the numbers cannot drift apart again."""

import json
import re

from conftest import REPO

README = (REPO / "README.md").read_text()
MODEL = REPO / "models" / "default"


def tables(markdown: str) -> dict[str, dict[str, str]]:
    """Every markdown table row as {first cell: {header: cell}}, headers from the table's own first line."""
    rows, header = {}, None
    for line in markdown.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set(line) <= set("|-: "):
            rows[cells[0]] = dict(zip(header, cells))
    return rows


def section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}.*?\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"no section {heading!r}"
    return match.group(1)


def test_readme_opens_with_try_it_and_stays_short():
    assert README.count("\n") <= 220
    assert re.findall(r"^## .*", README, flags=re.M)[0] == "## Try it"
    assert "⟪" not in README  # no placeholder left


def test_headline_figures_are_the_shipped_models():
    metrics = json.loads((MODEL / "metrics.json").read_text())["test"]
    config = json.loads((MODEL / "config.json").read_text())
    text = section(README, "The shipped model")
    for name in ("gender_accuracy", "age_group_accuracy", "age_group_one_off_accuracy"):
        assert f"{100 * metrics[name]:.1f}%" in text, name
    assert f"gender ECE {metrics['gender_ece']:.3f}" in text
    assert f"T = {config['calibration_temperature']:.3f}" in text


def test_cross_dataset_rows_are_the_cards():
    card = tables(section((MODEL / "README.md").read_text(), "Cross-dataset results"))
    quoted = tables(section(README, "The shipped model"))
    compared = 0
    for name, row in quoted.items():
        if name not in card:
            continue
        for header, cell in row.items():
            if header in card[name] and header != "test set":
                assert cell.replace("**", "") == card[name][header], (name, header)
                compared += 1
    assert compared >= 6  # the README does quote the card's table


def test_the_table_parser_sees_a_difference():
    card = tables("| test set | gender acc. |\n|---|---|\n| a | 90.0% |\n")
    quoted = tables("| test set | gender acc. |\n|---|---|\n| a | 91.0% |\n")
    assert card["a"]["gender acc."] != quoted["a"]["gender acc."]
