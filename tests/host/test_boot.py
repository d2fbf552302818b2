"""ComfyUI boots in-process and the pack registers its V3 extension."""

import asyncio


def test_pack_loads_under_comfyui(pack):
    import nodes

    assert hasattr(nodes, "NODE_CLASS_MAPPINGS"), "ComfyUI's nodes.py must win over the pack's nodes/ package"
    extension = asyncio.run(pack.comfy_entrypoint())
    assert type(extension).__name__ == "EvoSearchExtension"
