"""ComfyUI V3 nodes of the EvoSearch pack: the only package here that imports ComfyUI.

Each module defines ``NODES``, a list of ``io.ComfyNode`` classes; :class:`EvoSearchExtension` registers them all,
and adds the HTTP route the pack's web extension calls (:mod:`.web_routes`) when ComfyUI's server is running.
"""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io


class EvoSearchExtension(ComfyExtension):
    """The pack's node list for ComfyUI's V3 loader."""

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        from . import web_routes

        web_routes.register()  # the route web/js/evosearch.js calls; nothing without a running server
        from . import builtin_reward_nodes, demo_nodes, reward_nodes, sampler_nodes, shapes_nodes

        return [*sampler_nodes.NODES, *reward_nodes.NODES, *builtin_reward_nodes.NODES, *demo_nodes.NODES,
                *shapes_nodes.NODES]  # fmt: skip
