"""EvoSearch: test-time evolutionary search over initial noise and intermediate states of a diffusion/flow sampler.

He et al., "Scaling Image and Video Generation via Test-Time Evolutionary Search", arXiv 2505.17618 (2025).
Torch only; no ComfyUI imports (tests/core/test_import_boundary.py enforces this). docs/method.md describes the
algorithm, docs/architecture.md the code.

    import evosearch as es
    process = es.KDiffusionProcess(denoiser, sigmas, sampler="euler_ancestral", eta=1.0)
    result = es.search(process, reward, shape=(2,), schedule=es.Schedule.plan(5000, 50), seed=0)

**One import identity.** The engine is importable as a top-level package (``import evosearch``: scripts, tests) and
as a sub-package of the node pack (``<pack>.evosearch``, how ComfyUI loads it). Whichever name is imported first
owns the modules, and the other name is registered in ``sys.modules`` as an alias of the same module objects, so
``isinstance`` checks and registries agree across both names.
"""

import sys as _sys
from pathlib import Path as _Path


def _find_twin() -> object | None:
    """The same package already imported under another name (same ``__init__.py`` file), if any."""
    here = _Path(__file__).resolve()
    for name, module in list(_sys.modules.items()):
        if name == __name__ or not (name == "evosearch" or name.endswith(".evosearch")):
            continue
        file = getattr(module, "__file__", None)
        if file and _Path(file).resolve() == here:
            return module
    return None


def _alias(twin: object) -> None:
    """Register every already-imported submodule of ``twin`` under this package's name as well."""
    prefix = twin.__name__  # type: ignore[attr-defined]
    for name, module in list(_sys.modules.items()):
        if name == prefix or name.startswith(prefix + "."):
            _sys.modules[__name__ + name[len(prefix) :]] = module


_twin = _find_twin()
if _twin is not None:
    _alias(_twin)  # the import system returns sys.modules[__name__], i.e. the twin, to whoever imported this name
else:
    from .facts import NotAFixedStepSampler, SamplerFacts, measure_sampler
    from .memory import MemoryEstimate, SearchTooLarge, estimate_memory
    from .mutation import INTERMEDIATE_MODES, Mutation, mutate_additive, mutate_initial, mutate_redraw
    from .pool import SelectionPool
    from .process import DenoisingProcess, KDiffusionProcess, Monitor, StepInfo, check_sigmas
    from .result import GenerationRecord, SearchEvent, SearchResult, StopSearch, distinct_options, strict_json
    from .rng import IndividualNoise, derive_seed, normal_rows
    from .schedule import (
        FITNESS,
        PARTICLE_FITNESS,
        POTENTIALS,
        PRESETS,
        SPEC_FITNESS,
        SPEC_MODES,
        STRATEGIES,
        Schedule,
        ScheduleSpec,
        default_evolution_steps,
        parse_int_list,
        parse_step_list,
        resolve_steps,
    )
    from .search import pool_sizes, prepare, search
    from .selection import elite_indices, fk_potential, multinomial_resample, tournament_select
    from .steppers import BUILTIN_SAMPLERS, ancestral_step, sample_ddpm, sample_euler_ancestral
    from .strategies import (
        Batch,
        Scored,
        SearchContext,
        Segment,
        Strategy,
        fitness_names,
        get_strategy,
        planning_fitness,
        register_strategy,
        strategy_names,
    )

    __all__ = [
        "BUILTIN_SAMPLERS",
        "Batch",
        "DenoisingProcess",
        "FITNESS",
        "GenerationRecord",
        "INTERMEDIATE_MODES",
        "IndividualNoise",
        "KDiffusionProcess",
        "MemoryEstimate",
        "Monitor",
        "Mutation",
        "NotAFixedStepSampler",
        "PARTICLE_FITNESS",
        "POTENTIALS",
        "PRESETS",
        "SPEC_FITNESS",
        "SPEC_MODES",
        "STRATEGIES",
        "SamplerFacts",
        "Schedule",
        "ScheduleSpec",
        "Scored",
        "SearchContext",
        "SearchEvent",
        "SearchResult",
        "SearchTooLarge",
        "Segment",
        "SelectionPool",
        "StepInfo",
        "StopSearch",
        "Strategy",
        "ancestral_step",
        "check_sigmas",
        "default_evolution_steps",
        "derive_seed",
        "distinct_options",
        "elite_indices",
        "estimate_memory",
        "fitness_names",
        "fk_potential",
        "get_strategy",
        "measure_sampler",
        "multinomial_resample",
        "mutate_additive",
        "mutate_initial",
        "mutate_redraw",
        "normal_rows",
        "parse_int_list",
        "parse_step_list",
        "planning_fitness",
        "pool_sizes",
        "prepare",
        "register_strategy",
        "resolve_steps",
        "sample_ddpm",
        "sample_euler_ancestral",
        "search",
        "strategy_names",
        "strict_json",
        "tournament_select",
    ]
