"""HTTP routes for the pack's web extension (web/js/evosearch.js).

``POST /evosearch/plan`` (and ``/api/evosearch/plan``, which ComfyUI adds for every route) with JSON
``{"inputs": {<EvoSearch Schedule widget name>: value, ...}, "steps": int}`` answers, always with HTTP 200,
``{"text": str}`` — what the Schedule node would show for those inputs at ``steps`` sampler steps (its planned NFE,
the equal-budget Best-of-N and its reward calls) — or ``{"error": str}`` saying what is wrong with the inputs.

The text is the Schedule node's own: :func:`plan` calls ``EvoSearchSchedule.execute`` with ``steps`` overridden and
reads the ``PreviewText`` of its UI output, so the page and a run never disagree.

:func:`register` adds the route to ComfyUI's running server (``server.PromptServer.instance``) once; without a server
(tests, tools) it does nothing, and importing this module never touches the server.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

__all__ = ["PLAN_PATH", "plan", "register"]

log = logging.getLogger("evosearch")

PLAN_PATH = "/evosearch/plan"
#: Ids of the servers the routes were added to (ComfyUI has one; tests may build more).
_registered: set[int] = set()


def _schedule_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """The Schedule's declared inputs from ``inputs``; missing ones take their schema default, unknown ones drop."""
    from .sampler_nodes import EvoSearchSchedule

    out: dict[str, Any] = {}
    for spec in EvoSearchSchedule.define_schema().inputs:
        if spec.id in inputs:
            out[spec.id] = inputs[spec.id]
        elif getattr(spec, "default", None) is not None:
            out[spec.id] = spec.default
    return out


def _ui_text(ui: Any) -> str:
    """The text of a node's ``ui`` (a ``ui.PreviewText`` or the dict ComfyUI sends as ``output``)."""
    data = ui.as_dict() if hasattr(ui, "as_dict") else ui
    if not isinstance(data, dict) or not data.get("text"):
        raise ValueError("EvoSearch Schedule returned no text to show")
    return "\n".join(str(t) for t in data["text"])


def plan(inputs: dict[str, Any], steps: int) -> dict[str, str]:
    """``{"text": ...}`` for a Schedule with ``inputs`` at ``steps`` sampler steps, or ``{"error": ...}``."""
    from .sampler_nodes import EvoSearchSchedule

    if not isinstance(inputs, dict):
        return {"error": f"'inputs' must be an object of EvoSearch Schedule widget values, got {type(inputs).__name__}"}
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        return {"error": f"'steps' must be a whole number of sampler steps ≥ 1, got {steps!r}"}
    try:
        output = EvoSearchSchedule.execute(**{**_schedule_inputs(inputs), "steps": steps})
        return {"text": _ui_text(output.ui)}
    except (ValueError, TypeError) as e:  # a bad widget value: the Schedule's own message
        return {"error": str(e)}


def _running_server() -> Any | None:
    """ComfyUI's ``PromptServer.instance`` when ComfyUI's server module is loaded and a server exists."""
    module = sys.modules.get("server")
    return getattr(getattr(module, "PromptServer", None), "instance", None)


def register(server: Any | None = None) -> bool:
    """Add the routes to ``server`` (default: the running ComfyUI server) once. False when there is no server."""
    server = server if server is not None else _running_server()
    if server is None or not hasattr(server, "routes"):
        return False
    if id(server) in _registered:
        return True
    from aiohttp import web

    @server.routes.post(PLAN_PATH)
    async def _plan_route(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "the request body is not JSON"})
        if not isinstance(body, dict):
            return web.json_response({"error": "the request body must be a JSON object"})
        return web.json_response(plan(body.get("inputs", {}), body.get("steps", 0)))

    _registered.add(id(server))
    log.debug("EvoSearch: registered POST %s", PLAN_PATH)
    return True
