"""EvoSearch: test-time evolutionary search over initial noise and intermediate states of a diffusion/flow sampler.

He et al., "Scaling Image and Video Generation via Test-Time Evolutionary Search", arXiv 2505.17618 (2025).
Torch only; no ComfyUI imports (tests/core/test_import_boundary.py enforces this).

    import evosearch as es
    process = es.KDiffusionProcess(denoiser, sigmas, sampler="euler_ancestral", eta=1.0)
    result = es.search(process, reward, shape=(2,), schedule=es.Schedule.plan(5000, 50), seed=0)
"""

from .mutation import INTERMEDIATE_MODES, Mutation, mutate_additive, mutate_initial, mutate_redraw
from .process import DenoisingProcess, KDiffusionProcess, StepInfo, check_sigmas
from .result import GenerationRecord, SearchEvent, SearchResult, StopSearch
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
)
from .search import pool_sizes, search
from .selection import elite_indices, fk_potential, multinomial_resample, tournament_select
from .steppers import BUILTIN_SAMPLERS, ancestral_step, sample_ddpm, sample_euler_ancestral

__all__ = [
    "BUILTIN_SAMPLERS",
    "DenoisingProcess",
    "GenerationRecord",
    "INTERMEDIATE_MODES",
    "IndividualNoise",
    "KDiffusionProcess",
    "Mutation",
    "FITNESS",
    "PARTICLE_FITNESS",
    "POTENTIALS",
    "PRESETS",
    "SPEC_FITNESS",
    "SPEC_MODES",
    "STRATEGIES",
    "Schedule",
    "ScheduleSpec",
    "SearchEvent",
    "SearchResult",
    "StepInfo",
    "StopSearch",
    "ancestral_step",
    "check_sigmas",
    "default_evolution_steps",
    "derive_seed",
    "elite_indices",
    "fk_potential",
    "multinomial_resample",
    "mutate_additive",
    "mutate_initial",
    "mutate_redraw",
    "normal_rows",
    "parse_int_list",
    "pool_sizes",
    "sample_ddpm",
    "sample_euler_ancestral",
    "search",
    "tournament_select",
]
