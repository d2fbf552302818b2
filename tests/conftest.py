"""Test groups and their summary line.

Groups are the folders under tests/: core (engine, no ComfyUI), rewards (tiny reward models), host (a real ComfyUI
found through COMFYUI_PATH), workflows (example workflows through ComfyUI's executor), browser (ComfyUI's real web
frontend in headless Chromium). Host, workflow and browser tests are skipped with a printed reason where ComfyUI is
absent; browser tests also where no Chromium (or websocket-client) is. The summary names which groups ran and which
were skipped.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))  # makes tests/support importable as `support`

_outcomes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
_skip_reasons: dict[str, set[str]] = defaultdict(set)


def _group(nodeid: str) -> str:
    parts = nodeid.replace("\\", "/").split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else parts[0].split("::")[0]


def pytest_runtest_logreport(report):  # noqa: ANN001 - pytest hook
    group = _group(report.nodeid)
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _outcomes[group][report.outcome] += 1
        if report.outcome == "skipped" and hasattr(report, "wasxfail"):
            _skip_reasons[group].add(f"expected failure: {report.wasxfail}")
        elif report.outcome == "skipped" and isinstance(report.longrepr, tuple):
            _skip_reasons[group].add(str(report.longrepr[2]).removeprefix("Skipped: "))


def pytest_terminal_summary(terminalreporter):  # noqa: ANN001 - pytest hook
    tr = terminalreporter
    tr.section("EvoSearch test groups")
    for group in sorted(_outcomes):
        counts = _outcomes[group]
        ran = counts.get("passed", 0) + counts.get("failed", 0)
        skipped = counts.get("skipped", 0)
        state = "RAN" if ran else "SKIPPED"
        line = f"{group:<10} {state:<8} passed={counts.get('passed', 0)} failed={counts.get('failed', 0)} skipped={skipped}"
        tr.write_line(line)
        for reason in sorted(_skip_reasons[group])[:3]:
            tr.write_line(f"{'':<10} skip reason: {reason}")
        if group == BROWSER_GROUP and getattr(tr.config, "evosearch_screenshots", None):
            tr.write_line(f"{'':<10} screenshots: {tr.config.evosearch_screenshots}")


# ---------------------------------------------------------------------------------------------- ComfyUI host groups
import pytest  # noqa: E402
import torch  # noqa: E402
from support.browser import browser_unavailable  # noqa: E402
from support.paths import comfyui_path  # noqa: E402

HOST_GROUPS = ("host", "workflows")
BROWSER_GROUP = "browser"
_comfy_path, _comfy_reason = comfyui_path()


def pytest_collection_modifyitems(config, items):  # noqa: ANN001 - pytest hook
    reasons = {}
    if _comfy_path is None:
        reasons = dict.fromkeys((*HOST_GROUPS, BROWSER_GROUP), f"ComfyUI tests skipped: {_comfy_reason}")
    elif any(_group(item.nodeid) == BROWSER_GROUP for item in items):
        missing = browser_unavailable()
        if missing:
            reasons[BROWSER_GROUP] = f"browser tests skipped: {missing}"
    for item in items:
        reason = reasons.get(_group(item.nodeid))
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def pack():
    """This pack imported as ``evosearch_pack`` on top of an in-process CPU ComfyUI (host and workflow tests)."""
    if _comfy_path is None:
        pytest.skip(_comfy_reason)
    from support.comfy import boot

    return boot()


@pytest.fixture(autouse=True)
def _comfy_inference_mode(request):
    """ComfyUI runs every node under torch.inference_mode(); host and workflow tests do too."""
    if _group(request.node.nodeid) in HOST_GROUPS:
        with torch.inference_mode():
            yield
    else:
        yield
