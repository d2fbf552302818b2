"""ComfyUI entry point of the EvoSearch node pack.

Importing this module has no side effects: ComfyUI calls :func:`comfy_entrypoint`, which imports the nodes lazily.
``WEB_DIRECTORY`` is the pack's frontend folder (a small extension in web/js/ and node help pages in web/docs/),
which ComfyUI serves at ``/extensions/<pack folder>/``.
"""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    """Return the pack's ``ComfyExtension`` (ComfyUI V3 node registration)."""
    from .nodes import EvoSearchExtension

    return EvoSearchExtension()
