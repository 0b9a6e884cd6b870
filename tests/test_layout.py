"""The package's folders show the flow: each subpackage imports only the shared modules and the flows before it."""

import ast
import importlib
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "genderage"
# Flow order: a module may import its own flow, earlier flows and the shared top-level modules (rank 0).
FLOW_RANK = {"": 0, "data": 1, "training": 2, "serving": 3, "measure": 4}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every genderage module `path` imports, at module level or inside functions, resolved to absolute names."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found |= {c for c in candidates if c.startswith("genderage") and _is_module(c)}
    return found - {name}


def _is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").is_file() or (PACKAGE.parent / relative / "__init__.py").is_file()


def flow(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in FLOW_RANK) else ""


GRAPH = {module_name(p): imported_modules(p) for p in PACKAGE.rglob("*.py") if "genderage_metric" not in p.parts}


def test_each_flow_is_a_subpackage():
    assert {flow(name) for name in GRAPH} == set(FLOW_RANK)
    top_level = sorted(name for name in GRAPH if name.count(".") == 1 and flow(name) == "")
    # The shared vocabulary, a model folder's file names and the command lines' checks; everything else lives in a flow.
    assert top_level == ["genderage.cli", "genderage.labels", "genderage.model_files"]


def test_serving_imports_nothing_from_training():
    """The light install (no torch) serves models: serving must not reach into training for anything."""
    reached = {name: sorted(t for t in targets if flow(t) == "training") for name, targets in GRAPH.items() if flow(name) == "serving"}
    assert {name: targets for name, targets in reached.items() if targets} == {}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_from_a_later_flow(module):
    later = [target for target in GRAPH[module] if FLOW_RANK[flow(target)] > FLOW_RANK[flow(module)]]
    assert later == [], f"{module} imports {later}, which belong to a later flow"


def test_no_import_cycle():
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(GRAPH.get(name, ())):
            if state.get(target) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path + [target]))
            if target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_the_layer_check_sees_a_violation(tmp_path, monkeypatch):
    """The checks above can fail: a data module importing the serving flow is reported."""
    bad = PACKAGE / "data" / "sources.py"
    text = bad.read_text() + "\nfrom ..serving.faces import FaceDetector\n"
    fake = tmp_path / "genderage" / "data" / "sources.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(text)
    (tmp_path / "genderage" / "serving").mkdir()
    (tmp_path / "genderage" / "serving" / "faces.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "genderage")
    imports = imported_modules(fake)
    assert "genderage.serving.faces" in imports
    assert FLOW_RANK[flow("genderage.serving.faces")] > FLOW_RANK[flow("genderage.data.sources")]


@pytest.mark.parametrize("entry_point", [
    "genderage.data.load_prepared",
    "genderage.serving.analysis.FaceAnalyzer",
    "genderage.serving.faces.FaceDetector",
    "genderage.serving.inference.GenderAgeClassifier",
])
def test_public_entry_points_import(entry_point):
    module, _, name = entry_point.rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))
