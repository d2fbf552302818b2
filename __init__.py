"""ComfyUI entry point of the EvoSearch node pack.

Importing this module has no side effects: ComfyUI calls :func:`comfy_entrypoint`, which imports the nodes lazily.
"""


async def comfy_entrypoint():
    """Return the pack's ``ComfyExtension`` (ComfyUI V3 node registration)."""
    from .nodes import EvoSearchExtension

    return EvoSearchExtension()
