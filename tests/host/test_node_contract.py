"""Contract every node of the pack keeps: ids, names, categories, descriptions, tooltips, sane defaults (issue 3)."""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture(scope="module")
def node_classes(pack):
    extension = asyncio.run(pack.comfy_entrypoint())
    return asyncio.run(extension.get_node_list())


def test_ids_are_unique_prefixed_and_expected(node_classes):
    ids = [cls.define_schema().node_id for cls in node_classes]
    assert len(ids) == len(set(ids)), f"duplicate node ids: {ids}"
    assert all(i.startswith("EvoSearch") for i in ids), ids
    for required in ("EvoSearchSchedule", "EvoSearchMutation", "EvoSearchSampler", "EvoSearchKSampler"):
        assert required in ids


def test_every_node_is_documented_and_every_input_has_a_tooltip(node_classes):
    problems = []
    for cls in node_classes:
        schema = cls.define_schema()
        name = schema.node_id
        if not schema.display_name:
            problems.append(f"{name}: no display name")
        if not schema.category.startswith("sampling/evosearch"):
            problems.append(f"{name}: category {schema.category!r} outside sampling/evosearch")
        if len(schema.description or "") < 40:
            problems.append(f"{name}: description missing or too short")
        for inp in schema.inputs or []:
            if not (inp.tooltip or "").strip():
                problems.append(f"{name}.{inp.id}: no tooltip")
            default = getattr(inp, "default", None)
            low, high = getattr(inp, "min", None), getattr(inp, "max", None)
            if default is not None and low is not None and default < low:
                problems.append(f"{name}.{inp.id}: default {default} below min {low}")
            if default is not None and high is not None and default > high:
                problems.append(f"{name}.{inp.id}: default {default} above max {high}")
            options = getattr(inp, "options", None)
            if options is not None and default is not None and default not in options:
                problems.append(f"{name}.{inp.id}: default {default!r} not among its options")
    assert not problems, "\n".join(problems)


def test_comfyui_can_describe_every_node(node_classes):
    for cls in node_classes:
        info = cls.GET_NODE_INFO_V1()
        assert info["name"] == cls.define_schema().node_id
        assert info["input"]["required"] or info["input"].get("optional")
