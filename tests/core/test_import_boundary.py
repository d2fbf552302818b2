"""evosearch/ and rewards/ import torch and never ComfyUI: only nodes/ may (docs/architecture.md, issue 2)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from support.paths import REPO

FORBIDDEN = {"comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "server", "nodes", "execution",
             "latent_preview", "node_helpers"}  # fmt: skip


def _imports(path: Path) -> list[tuple[int, str, int]]:
    """(line, top-level module, relative level) for every import in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0], 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, (node.module or "").split(".")[0], node.level))
    return found


@pytest.mark.parametrize("package", ["evosearch", "rewards"])
def test_package_never_imports_comfyui(package):
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    offenders = []
    for path in files:
        # a relative import of level L from a file D package levels deep (evosearch/x.py: 1; evosearch/sub/x.py: 2)
        # stays inside the top-level package while L <= D; at L == D it names a sibling of the package's modules
        depth = len(path.relative_to(REPO / package).parts)
        for line, module, level in _imports(path):
            if level == 0 and module in FORBIDDEN:
                offenders.append(f"{path.relative_to(REPO)}:{line} imports {module}")
            if level > depth or (level == depth and module == "nodes"):
                offenders.append(f"{path.relative_to(REPO)}:{line} reaches outside its package (level {level})")
    assert not offenders, "ComfyUI imports outside nodes/:\n" + "\n".join(offenders)


def test_boundary_check_catches_a_violation(tmp_path):
    nested = tmp_path / "nested.py"
    nested.write_text("from ..mutation import Mutation\nfrom ... import nodes\n")
    assert [level for _, _, level in _imports(nested)] == [2, 3]  # level 3 from a depth-2 file leaves the package
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom comfy import model_management\nimport folder_paths as fp\n")
    assert [m for _, m, _ in _imports(bad) if m in FORBIDDEN] == ["comfy", "folder_paths"]


def test_root_entry_point_has_no_import_side_effects():
    source = (REPO / "__init__.py").read_text()
    tree = ast.parse(source)
    top_level_imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not top_level_imports, "the pack's __init__.py must import its nodes lazily inside comfy_entrypoint()"
    assert "NODE_CLASS_MAPPINGS" not in source, "V1 mappings would make ComfyUI ignore comfy_entrypoint"
