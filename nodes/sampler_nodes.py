"""EvoSearch nodes for sampling: schedule, mutation, the SAMPLER, the all-in-one KSampler and the results node.

Every node here is thin: the algorithm is :mod:`evosearch`, the ComfyUI plumbing is :mod:`.search_sampler`.
EvoSearch: He et al., "Scaling Image and Video Generation via Test-Time Evolutionary Search", arXiv 2505.17618.
"""

from __future__ import annotations

import comfy.model_management
import comfy.sample
import comfy.samplers
import torch
from comfy_api.latest import io, ui

from .. import evosearch as es
from .compat import fix_empty_latent, schema_extras, strip_compression_keys
from .experts import WAN22_BOUNDARY, make_guider
from .report import population_latent, report_json, reward_plot
from .search_sampler import NodeError, RunLog, RunRecord, SearchSampler
from .types import MUTATION, REWARD, RUN, SCHEDULE

CATEGORY = "sampling/evosearch"
PAPER = "EvoSearch (He et al. 2025, arXiv 2505.17618)"

_SAMPLER_TOOLTIP = (
    "The sampler each individual runs (euler_ancestral, ddpm, dpmpp_2m_sde, er_sde, …). Any sampler works for "
    "Best-of-N and x_T-only schedules. When the schedule evolves intermediate steps it must inject noise: the search "
    "measures that, and runs a deterministic one (euler, dpmpp_2m, heun, flow ODE samplers) as its stochastic "
    "counterpart (euler → euler_ancestral, dpmpp_2m → dpmpp_2m_sde, eta 0 → eta 1, otherwise euler_ancestral), with "
    "a warning on the node and in the report."
)
_CHUNK_TOOLTIP = (
    "Most individuals per model call. 0 = automatic: what fits in free memory, at most 16. Results do not depend "
    "on it (each individual has its own noise streams); an out-of-memory error halves it and retries."
)


_SCORING_VAE_TOOLTIP = (
    "Optional cheaper VAE for scoring only (e.g. a TAESD from Load VAE: taesd, taesdxl, taef1, …): every candidate the "
    "reward scores is decoded with it, while the returned latent is decoded downstream by your own VAE. Decoding is "
    "most of a search's side cost on big models; a fast decoder ranks candidates almost as the full one does."
)


_SCORES_TOOLTIP = "The reward of each member of the final population, best first (one number per sample)."
_REPORT_TOOLTIP = (
    "JSON: method, sampler, NFE spent and planned, decodes, reward calls, seconds split into model / decode / "
    "reward, the per-generation curve, warnings. Show it with a text preview node or save it."
)
_PLOT_TOOLTIP = "Reward vs NFE: the best so far and each generation's mean (x0-fitness generations: the x0 proxy)."


def _spec_or_default(schedule: es.ScheduleSpec | None) -> es.ScheduleSpec:
    return schedule if schedule is not None else es.ScheduleSpec(mode="budget_multiple", budget=10.0)


def _mutation_or_default(mutation: es.Mutation | None) -> es.Mutation:
    return mutation if mutation is not None else es.Mutation()


class EvoSearchSchedule(io.ComfyNode):
    """When generations happen, how big they are, and which strategy runs at that compute."""

    DISPLAY = "EvoSearch Schedule"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EvoSearchSchedule",
            display_name=cls.DISPLAY,
            category=CATEGORY,
            description=(
                f"Evolution schedule of {PAPER}: the steps at which a generation is formed and the population sizes. "
                "Give a budget (a multiple of one trajectory, or an NFE count) and let the planner build the schedule, "
                "type one in, or pick the paper's preset. Switch the strategy to Best-of-N or particle sampling to "
                "compare at the same compute. The cost at the given steps is shown on the node."
            ),
            inputs=[
                io.Combo.Input(
                    "mode",
                    options=list(es.SPEC_MODES),
                    default="budget_multiple",
                    tooltip="How the schedule is given. budget_multiple: spend 'budget' × one image's model "
                    "evaluations and let the planner choose generations and populations. budget_nfe: spend 'budget' "
                    "model evaluations. custom: use 'evolution_steps' and 'population' as typed. preset_sd21 / "
                    "preset_flux / preset_wan: the official code's schedules (×100, ×29, ×20 at 50 steps), rescaled "
                    "to your sampler's steps. Fields a mode does not use are ignored (and greyed out on the node).",
                ),  # fmt: skip
                io.Combo.Input(
                    "strategy",
                    options=list(es.strategy_names()),
                    default="evosearch",
                    tooltip="evosearch: evolve noise and intermediate latents (the paper's method). best_of_n: "
                    "independent samples, keep the best. particles: particle sampling (FK-steering: resampling "
                    "on rewards of x0 predictions). Switching keeps the compute: every strategy spends the NFE the "
                    "EvoSearch plan spends, so A/B comparisons are fair.",
                ),  # fmt: skip
                io.Float.Input(
                    "budget",
                    default=10.0,
                    min=1.0,
                    max=1e7,
                    step=1.0,
                    tooltip="budget_multiple: how many single-image generations of compute to spend (×10 = ten "
                    "images' worth; the paper's ×100 = 5,000 NFE at 50 steps). budget_nfe: model evaluations. "
                    "Ignored by custom and preset modes.",
                ),  # fmt: skip
                io.String.Input(
                    "evolution_steps",
                    default="0, 0.4, 0.6, 0.8",
                    tooltip="custom mode only: where generations form, increasing — fractions of the sampler's "
                    "steps (0 = the initial noise x_T, 0.4 = 40 % of the way) that work at any step count, or "
                    "step indices (whole numbers below the sampler's steps). The default is the paper's SD2.1 "
                    "schedule, 0, 20, 30, 40 of 50 steps.",
                ),  # fmt: skip
                io.String.Input(
                    "population",
                    default="42, 26, 26, 26, 30",
                    tooltip="custom mode only: one more entry than evolution_steps — the initial population, then "
                    "the children of each generation. Paper SD2.1: 42, 26, 26, 26, 30 (×100 one image).",
                ),  # fmt: skip
                io.Int.Input(
                    "steps",
                    default=20,
                    min=1,
                    max=10000,
                    tooltip="The step count the cost on this node is shown for (the page reads the linked "
                    "sampler's steps when it can). At run time the schedule is always planned, rescaled or "
                    "resolved for the sampler's real steps; custom step indices beyond them are an error.",
                ),  # fmt: skip
                io.Combo.Input(
                    "potential",
                    options=list(es.POTENTIALS),
                    default="max",
                    tooltip="particles only: the FK-steering potential — max: exp(λ·max(r_t, r_prev)) (the paper's "
                    "baseline), diff: exp(λ·(r_t − r_prev)), add: exp(λ·Σr).",
                ),
                io.Float.Input(
                    "lam",
                    default=10.0,
                    min=0.0,
                    max=1000.0,
                    step=0.5,
                    tooltip="particles only: λ, the inverse temperature of the resampling weights exp(λ·r).",
                ),  # fmt: skip
                io.Combo.Input(
                    "fitness",
                    options=["auto", *es.fitness_names()],
                    default="auto",
                    tooltip="How generations are scored and selected. graded (EvoSearch's default, what auto "
                    "plans): the reward of the model's x0 prediction at each evolution step, free in NFE, with "
                    "selection pressure rising with the step (gentle while x0 predictions are blurry, greedy near the "
                    "end) — ahead of Best-of-N and particle sampling on every benchmark of this pack. x0: the same "
                    "proxy with the paper's greedy tournaments at every step. rollout: every individual is run to a "
                    "finished image and scored (the paper's EvoSearch; children cost their remaining steps). auto: "
                    "graded for EvoSearch budgets, rollout for custom lists and presets (the paper's meaning of "
                    "those populations), x0 for particles.",
                ),  # fmt: skip
            ],
            outputs=[
                io.Custom(SCHEDULE).Output(
                    display_name="schedule", tooltip="Connect to an EvoSearch KSampler or EvoSearch Sampler."
                )
            ],
        )

    @classmethod
    def execute(
        cls, mode, strategy, budget, evolution_steps, population, steps, potential, lam, fitness="auto"
    ) -> io.NodeOutput:
        try:
            custom = mode == "custom"
            spec = es.ScheduleSpec(
                mode=mode,
                strategy=strategy,
                budget=float(budget),
                evolution_steps=es.parse_step_list(evolution_steps, "evolution_steps") if custom else (),
                population=es.parse_int_list(population, "population") if custom else (),
                potential=potential,
                lam=float(lam),
                fitness=fitness,
            )
            text = schedule_summary(spec, int(steps))
        except ValueError as e:
            raise NodeError(cls.DISPLAY, str(e)) from None
        return io.NodeOutput(spec, ui=ui.PreviewText(text))


#: The latent a memory figure on the Schedule node is quoted for: SD1.5 at 512², 64×64×4 float32 values.
_REFERENCE_LATENT = (4, 64, 64)


def schedule_summary(spec: es.ScheduleSpec, steps: int, mutation: es.Mutation | None = None) -> str:
    """What the Schedule node shows: the plan and its cost at ``steps`` (one evaluation per step; samplers with more
    are counted exactly at run time) and the states the search will hold at most."""
    schedule = spec.resolve(steps)
    mutation = mutation or es.Mutation()
    strategy = schedule.strategy_class
    memory = es.estimate_memory(strategy, schedule, mutation, steps, _REFERENCE_LATENT, torch.float32, 16, 32)
    calls = schedule.reward_calls(steps)
    return (
        f"{schedule.describe(steps)} — each a VAE decode ({calls:,} decodes; a scoring_vae makes them cheap).\n"
        f"Memory: {memory.describe()} for a 512² SD1.5 latent (scales with the latent's size)."
    )


class EvoSearchMutation(io.ComfyNode):
    """Mutation and selection settings."""

    DISPLAY = "EvoSearch Mutation"

    @classmethod
    def define_schema(cls) -> io.Schema:
        d = es.Mutation()
        return io.Schema(
            node_id="EvoSearchMutation",
            display_name=cls.DISPLAY,
            category=CATEGORY,
            description=(
                f"Mutation and selection of {PAPER}. Defaults are this pack's benchmark winners (see the README); "
                "set intermediate to additive, strength 1, β 0.2, tournament 0.9 for the official code's behaviour."
            ),
            inputs=[
                io.Float.Input(
                    "beta",
                    default=d.beta,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="β of the initial-noise mutation √(1−β²)·x + β·ε (paper 0.3, official code "
                    "0.2). 0 copies the parent, 1 draws a fresh noise.",
                ),  # fmt: skip
                io.Combo.Input(
                    "intermediate",
                    options=list(es.INTERMEDIATE_MODES),
                    default=d.intermediate,
                    tooltip="How intermediate latents mutate. redraw (default): keep the x0 prediction and "
                    "re-draw a fraction of the noise, so the latent stays on the model's marginal. "
                    "additive: the paper's x + σ_step·ε, which adds noise on top.",
                ),  # fmt: skip
                io.Float.Input(
                    "strength",
                    default=d.strength,
                    min=0.0,
                    max=10.0,
                    step=0.05,
                    tooltip="redraw: the fraction of the latent's noise re-drawn, 0..1 (default 1). "
                    "additive: the multiple of the step's own noise std (paper 1).",
                ),  # fmt: skip
                io.Int.Input(
                    "elites",
                    default=-1,
                    min=-1,
                    max=10000,
                    tooltip="Best individuals passed on unchanged each generation (official: 5 SD2.1, "
                    "3 FLUX, 2 Wan). -1 = automatic, 20% of the generation.",
                ),  # fmt: skip
                io.Float.Input(
                    "tournament",
                    default=d.tournament,
                    min=0.01,
                    max=10000.0,
                    step=0.01,
                    tooltip="Contestants per tournament: below 1 a fraction of the selection pool (default "
                    "0.9, as the official code), from 1 a count (1 = random parents; smaller "
                    "means more diversity, larger more greed).",
                ),  # fmt: skip
                io.Float.Input(
                    "max_share",
                    default=d.max_share,
                    min=0.01,
                    max=1.0,
                    step=0.01,
                    optional=True,
                    tooltip="Diversity: the largest share of a generation's mutated children one parent may have (1 = "
                    "no limit, the greediest). Lower keeps several lineages alive, so the final population holds "
                    "distinct options, at some cost in the best reward.",
                ),
                io.Int.Input(
                    "islands",
                    default=d.islands,
                    min=0,
                    max=256,
                    optional=True,
                    tooltip="Diversity for EvoSearch with x0 or graded fitness (the default): split the population into "
                    "this many islands that never mix, each a lineage of its own, so the search returns that many "
                    "distinct options. 0 = automatic: one island per option the EvoSearch KSampler's top_k asks for, "
                    "as far as islands of 4 or more individuals allow (one population when top_k is 0, the greediest "
                    "for the best sample). 1 = one population.",
                ),
            ],
            outputs=[
                io.Custom(MUTATION).Output(
                    display_name="mutation", tooltip="Connect to an EvoSearch KSampler or EvoSearch Sampler."
                )
            ],
        )

    @classmethod
    def execute(cls, beta, intermediate, strength, elites, tournament, max_share=None, islands=None) -> io.NodeOutput:
        try:
            mutation = es.Mutation(
                beta=float(beta),
                intermediate=intermediate,
                strength=float(strength),
                elites=None if int(elites) < 0 else int(elites),
                tournament=float(tournament) if float(tournament) < 1 else float(round(tournament)),
                max_share=es.Mutation().max_share if max_share is None else float(max_share),
                islands=es.Mutation().islands if islands is None else int(islands),
            )
        except ValueError as e:
            raise NodeError(cls.DISPLAY, str(e)) from None
        return io.NodeOutput(mutation)


def _inner_sampler(sampler_name: str, sampler: object | None) -> comfy.samplers.KSAMPLER:
    if sampler is not None:
        if not isinstance(sampler, comfy.samplers.KSAMPLER):
            raise TypeError(
                f"the SAMPLER input is a {type(sampler).__name__}; EvoSearch wraps k-diffusion samplers "
                "(KSamplerSelect, SamplerEulerAncestral, SamplerDPMPP_2M_SDE, …)"
            )
        return sampler
    made = comfy.samplers.sampler_object(sampler_name)
    if not isinstance(made, comfy.samplers.KSAMPLER):
        raise TypeError(f"sampler {sampler_name!r} is not a k-diffusion sampler; pick e.g. euler_ancestral or ddpm")
    return made


class EvoSearchSampler(io.ComfyNode):
    """A SAMPLER for SamplerCustomAdvanced that searches with EvoSearch around an inner stochastic sampler."""

    DISPLAY = "EvoSearch Sampler"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EvoSearchSampler",
            display_name=cls.DISPLAY,
            category=CATEGORY,
            description=(
                f"{PAPER} as a SAMPLER for SamplerCustomAdvanced: your GUIDER (CFG, APG, …), SIGMAS (any scheduler, "
                "shift) and NOISE are used as given, and the seed comes from the NOISE. Each latent is searched over "
                "a population; the best sample is returned. Connect 'run' to EvoSearch Results for the population, "
                "scores, report and plot."
            ),
            inputs=[
                io.Vae.Input(
                    "vae",
                    tooltip="The model's VAE: decodes candidates for the reward (unless a scoring_vae is given).",
                ),
                io.Custom(REWARD).Input(
                    "reward", tooltip="What to maximise: EvoSearch Load Reward, Combine Rewards, or Simple Reward."
                ),  # fmt: skip
                io.Combo.Input(
                    "sampler_name",
                    options=list(comfy.samplers.SAMPLER_NAMES),
                    default="euler_ancestral",
                    tooltip=_SAMPLER_TOOLTIP,
                ),
                io.Sampler.Input(
                    "sampler",
                    optional=True,
                    tooltip="Optional inner SAMPLER (e.g. SamplerEulerAncestral with its eta); overrides "
                    "sampler_name. " + _SAMPLER_TOOLTIP,
                ),  # fmt: skip
                io.Custom(SCHEDULE).Input(
                    "schedule", optional=True, tooltip="EvoSearch Schedule; default: EvoSearch with a ×10 budget."
                ),
                io.Custom(MUTATION).Input(
                    "mutation", optional=True, tooltip="EvoSearch Mutation; default: the pack's defaults."
                ),
                io.Int.Input("chunk_size", default=0, min=0, max=4096, tooltip=_CHUNK_TOOLTIP),
                io.Vae.Input("scoring_vae", optional=True, tooltip=_SCORING_VAE_TOOLTIP),
            ],
            outputs=[
                io.Sampler.Output(
                    display_name="sampler",
                    tooltip="The search as a SAMPLER: plug it into SamplerCustomAdvanced (it returns the best sample).",
                ),
                io.Custom(RUN).Output(
                    display_name="run",
                    tooltip="The runs of this sampler: connect to EvoSearch Results with the LATENT that "
                    "SamplerCustomAdvanced returned to get its population, scores, report and plot.",
                ),
            ],
            # its run log is filled by the sampling nodes downstream: never share it between two identical nodes
            **schema_extras(not_idempotent=True, search_aliases=["evolutionary search", "best of n", "reward search"]),
        )

    @classmethod
    def execute(
        cls, reward, sampler_name, chunk_size, vae=None, sampler=None, schedule=None, mutation=None, scoring_vae=None
    ) -> io.NodeOutput:  # noqa: E501
        if vae is None:
            raise NodeError(
                cls.DISPLAY, "no VAE is connected: the reward scores decoded images; connect the model's VAE"
            )
        try:
            inner = _inner_sampler(sampler_name, sampler)
        except TypeError as e:
            raise NodeError(cls.DISPLAY, str(e)) from None
        runs = RunLog()
        search = SearchSampler(inner, vae, reward, _spec_or_default(schedule), _mutation_or_default(mutation),
                               chunk_size, node=cls.DISPLAY, runs=runs, scoring_vae=scoring_vae)  # fmt: skip
        return io.NodeOutput(search, runs)


def check_latent_fits(node: str, model: object, latent: object) -> None:
    """Raise a clear error if ``latent`` (after ``fix_empty_latent_channels``) cannot go through ``model``."""
    latent_format = model.get_model_object("latent_format")
    want_dims = 5 if getattr(latent_format, "latent_dimensions", 2) == 3 else 4
    if latent.dim() != want_dims:
        kind = "video (5-D: batch, channels, frames, height, width)" if want_dims == 5 else "image (4-D)"
        raise NodeError(node, f"the latent has shape {tuple(latent.shape)} but this model takes {kind} latents")
    if latent.shape[1] != latent_format.latent_channels:
        raise NodeError(
            node,
            f"the latent has {latent.shape[1]} channels but this model's latents have {latent_format.latent_channels}; "
            "use an empty latent for this model or encode with its VAE",
        )


class EvoSearchKSampler(io.ComfyNode):
    """All-in-one EvoSearch sampler: KSampler inputs plus a VAE and a reward."""

    DISPLAY = "EvoSearch KSampler"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EvoSearchKSampler",
            display_name=cls.DISPLAY,
            category=CATEGORY,
            description=(
                f"{PAPER} in one node: like KSampler, but it spends a budget of extra compute searching initial noises "
                "and intermediate latents for the sample the reward likes best. Outputs the best latent, the final "
                "population (best first), its scores, a JSON report (method, NFE, decodes, reward calls, seconds, "
                "per-generation best/mean) and a reward-vs-NFE plot."
            ),
            inputs=[
                io.Model.Input(
                    "model", tooltip="The diffusion model (any ComfyUI model: SD1.5/2.1/XL, SD3, Flux, Wan…)."
                ),
                io.Conditioning.Input("positive", tooltip="Positive conditioning."),
                io.Conditioning.Input("negative", tooltip="Negative conditioning."),
                io.Latent.Input(
                    "latent_image",
                    tooltip="Empty latent (text-to-image/video), or an encoded one with "
                    "denoise < 1 (img2img) and optionally a noise mask (inpaint).",
                ),  # fmt: skip
                io.Vae.Input(
                    "vae",
                    tooltip="The model's VAE: decodes candidates for the reward (unless a scoring_vae is given).",
                ),
                io.Custom(REWARD).Input(
                    "reward", tooltip="What to maximise: EvoSearch Load Reward, Combine Rewards, or Simple Reward."
                ),  # fmt: skip
                io.Int.Input(
                    "seed",
                    default=0,
                    min=0,
                    max=0xFFFFFFFFFFFFFFFF,
                    control_after_generate=True,
                    tooltip="The only source of randomness: the same seed gives the same result for any chunk size.",
                ),  # fmt: skip
                io.Int.Input("steps", default=20, min=1, max=10000, tooltip="Sampler steps of one trajectory (T)."),
                io.Float.Input(
                    "cfg",
                    default=7.0,
                    min=0.0,
                    max=100.0,
                    step=0.1,
                    round=0.01,
                    tooltip="Classifier-free guidance scale (1 disables the negative pass).",
                ),
                io.Combo.Input(
                    "sampler_name",
                    options=list(comfy.samplers.SAMPLER_NAMES),
                    default="euler_ancestral",
                    tooltip=_SAMPLER_TOOLTIP,
                ),
                io.Combo.Input(
                    "scheduler",
                    options=list(comfy.samplers.SCHEDULER_NAMES),
                    default="normal",
                    tooltip="Noise schedule (σ spacing) as in KSampler.",
                ),
                io.Float.Input(
                    "denoise",
                    default=1.0,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="Below 1 starts from the input latent (img2img) as in KSampler.",
                ),
                io.Custom(SCHEDULE).Input(
                    "schedule", optional=True, tooltip="EvoSearch Schedule; default: EvoSearch with a ×10 budget."
                ),
                io.Custom(MUTATION).Input(
                    "mutation", optional=True, tooltip="EvoSearch Mutation; default: the pack's defaults."
                ),
                io.Int.Input("chunk_size", default=0, min=0, max=4096, tooltip=_CHUNK_TOOLTIP),
                io.Vae.Input("scoring_vae", optional=True, tooltip=_SCORING_VAE_TOOLTIP),
                io.Model.Input(
                    "model_low",
                    optional=True,
                    tooltip="Optional second model for two-expert models: 'model' runs while σ ≥ expert_boundary, "
                    "this one below it, in the same search (Wan 2.2 A14B: the low-noise expert; SDXL: the "
                    "refiner, with the same conditioning — use EvoSearch Two-Expert Guider for separate prompts).",
                ),
                io.Float.Input(
                    "expert_boundary",
                    default=WAN22_BOUNDARY,
                    min=0.0,
                    max=1000.0,
                    step=0.005,
                    optional=True,
                    tooltip="With model_low: the σ where the low-noise model takes over (Wan 2.2 A14B text-to-video "
                    "0.875, image-to-video 0.9, on the model's own σ scale). Ignored without model_low.",
                ),
                io.Int.Input(
                    "top_k",
                    default=0,
                    min=0,
                    max=4096,
                    optional=True,
                    tooltip="What 'population' returns. 0: the final population, best first. k > 0: k distinct good "
                    "options per latent — the best sample, then the best samples farthest from those already taken, "
                    "among the best 4·k the search finished (near-copies of one winner are skipped). With the "
                    "Mutation node's islands on automatic, k > 0 also splits EvoSearch's population into up to k "
                    "lineages that never mix (islands of 4 or more), so the options differ in content, not only in "
                    "detail.",
                ),
            ],
            outputs=[
                io.Latent.Output(
                    display_name="best", tooltip="The best sample the reward scored (decode with VAE Decode)."
                ),
                io.Latent.Output(
                    display_name="population",
                    tooltip="The final population, best first: several good options (decode to compare them).",
                ),
                io.Float.Output(display_name="scores", is_output_list=True, tooltip=_SCORES_TOOLTIP),
                io.String.Output(display_name="report", tooltip=_REPORT_TOOLTIP),
                io.Image.Output(display_name="plot", tooltip=_PLOT_TOOLTIP),
            ],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent_image, reward, seed, steps, cfg, sampler_name, scheduler,
                denoise, chunk_size, vae=None, schedule=None, mutation=None, scoring_vae=None, model_low=None,
                expert_boundary=WAN22_BOUNDARY, top_k=0) -> io.NodeOutput:  # fmt: skip
        if vae is None:
            raise NodeError(
                cls.DISPLAY, "no VAE is connected: the reward scores decoded images; connect the model's VAE"
            )
        latent = fix_empty_latent(model, latent_image)
        check_latent_fits(cls.DISPLAY, model, latent)
        noise = comfy.sample.prepare_noise(latent, seed, latent_image.get("batch_index"))
        inner = _inner_sampler(sampler_name, None)
        spec = _spec_or_default(schedule)
        settings = _mutation_or_default(mutation).for_options(int(top_k))  # automatic islands: one per option
        sampler = SearchSampler(inner, vae, reward, spec, settings, chunk_size, node=cls.DISPLAY,
                                scoring_vae=scoring_vae)  # fmt: skip
        sigmas = comfy.samplers.KSampler(
            model, steps=steps, device=model.load_device, sampler=sampler_name, scheduler=scheduler,
            denoise=denoise, model_options=model.model_options,
        ).sigmas  # fmt: skip
        if sigmas.shape[-1] < 2:
            raise NodeError(cls.DISPLAY, f"denoise={denoise} with {steps} steps leaves no step to sample; raise either")
        if model_low is None:
            samples = comfy.sample.sample_custom(
                model, noise, cfg, sampler, sigmas, positive, negative, latent,
                noise_mask=latent_image.get("noise_mask"), disable_pbar=True, seed=seed,
            )  # fmt: skip
        else:
            try:
                guider = make_guider(model, model_low, positive, negative, cfg, expert_boundary)
            except ValueError as e:
                raise NodeError(cls.DISPLAY, str(e)) from None
            samples = guider.sample(noise, latent, sampler, sigmas, denoise_mask=latent_image.get("noise_mask"),
                                    disable_pbar=True, seed=seed)  # fmt: skip
            samples = samples.to(comfy.model_management.intermediate_device())
        best = {k: v for k, v in strip_compression_keys(latent_image).items() if k != "samples"}
        best["samples"] = samples
        run = sampler.runs.last
        assert run is not None
        population, scores = population_latent(run, strip_compression_keys(latent_image), top_k)
        return io.NodeOutput(
            best, population, scores, report_json(run), reward_plot(run), ui=ui.PreviewText(run.summary())
        )


class EvoSearchResults(io.ComfyNode):
    """The population, scores, report and plot of the last search of an EvoSearch Sampler."""

    DISPLAY = "EvoSearch Results"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EvoSearchResults",
            display_name=cls.DISPLAY,
            category=CATEGORY,
            description=(
                "Reads what the EvoSearch Sampler's last search produced. Connect its 'run' output and the LATENT that "
                "SamplerCustomAdvanced returned (so this runs after the sampling)."
            ),
            inputs=[
                io.Custom(RUN).Input("run", tooltip="The 'run' output of EvoSearch Sampler."),
                io.Latent.Input("latent", tooltip="SamplerCustomAdvanced's output, to order this after the sampling."),
                io.Int.Input(
                    "top_k",
                    default=0,
                    min=0,
                    max=4096,
                    optional=True,
                    tooltip="What 'population' returns. 0: the final population, best first. k > 0: k distinct good "
                    "options per latent — the best sample, then the best samples farthest from those already taken, "
                    "among the best 4·k the search finished (near-copies of one winner are skipped). For options "
                    "that differ in content from EvoSearch with x0/graded fitness, set islands = k on the Mutation "
                    "node that feeds the EvoSearch Sampler.",
                ),
            ],
            outputs=[
                io.Latent.Output(
                    display_name="population",
                    tooltip="The final population of the run that produced 'latent', best first.",
                ),
                io.Float.Output(display_name="scores", is_output_list=True, tooltip=_SCORES_TOOLTIP),
                io.String.Output(display_name="report", tooltip=_REPORT_TOOLTIP),
                io.Image.Output(display_name="plot", tooltip=_PLOT_TOOLTIP),
            ],
        )

    @classmethod
    def execute(cls, run, latent, top_k=0) -> io.NodeOutput:
        record = find_run(cls.DISPLAY, run, latent)
        population, scores = population_latent(record, latent, top_k)
        return io.NodeOutput(
            population, scores, report_json(record), reward_plot(record), ui=ui.PreviewText(record.summary())
        )


def find_run(node: str, runs: object, latent: dict) -> RunRecord:
    """The run of an EvoSearch Sampler that returned exactly ``latent`` (see :class:`RunLog`)."""
    if not isinstance(runs, RunLog):
        raise NodeError(node, f"'run' must come from EvoSearch Sampler's 'run' output, got {type(runs).__name__}")
    if not len(runs):
        raise NodeError(node, "no search has run yet: connect this node after the sampler that uses the EvoSearch "
                        "Sampler (its LATENT output into 'latent')")  # fmt: skip
    record = runs.find(latent["samples"])
    if record is None:
        raise NodeError(
            node,
            f"this latent was not produced by the connected EvoSearch Sampler (its last {RunLog.KEEP} runs); connect "
            "the LATENT that SamplerCustomAdvanced returned with that sampler, unmodified",
        )
    return record


class EvoSearchTwoExpertGuider(io.ComfyNode):
    """One GUIDER over two models switched at a σ boundary (Wan 2.2 A14B experts, SDXL base + refiner)."""

    DISPLAY = "EvoSearch Two-Expert Guider"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EvoSearchTwoExpertGuider",
            display_name=cls.DISPLAY,
            category=CATEGORY,
            description=(
                "Runs two diffusion models as one: the high-noise model while σ ≥ boundary, the low-noise model "
                "below it, inside a single sampler call (both prepared and memory-managed by ComfyUI). Plug it into "
                "SamplerCustomAdvanced with the EvoSearch Sampler to search across Wan 2.2 A14B's two experts, or with "
                "any ComfyUI sampler to replace two chained KSamplerAdvanced nodes. Also fits SDXL base + refiner "
                "(give the refiner its own conditioning). Model evaluations are counted per expert in the report."
            ),
            inputs=[
                io.Model.Input("model_high", tooltip="The model for high noise (Wan 2.2: high_noise; SDXL: base)."),
                io.Model.Input("model_low", tooltip="The model for low noise (Wan 2.2: low_noise; SDXL: refiner)."),
                io.Conditioning.Input("positive", tooltip="Positive conditioning of the high-noise model."),
                io.Conditioning.Input("negative", tooltip="Negative conditioning of the high-noise model."),
                io.Float.Input(
                    "cfg",
                    default=4.0,
                    min=0.0,
                    max=100.0,
                    step=0.1,
                    round=0.01,
                    tooltip="CFG scale of the high-noise model.",
                ),  # fmt: skip
                io.Float.Input(
                    "cfg_low",
                    default=3.0,
                    min=0.0,
                    max=100.0,
                    step=0.1,
                    round=0.01,
                    tooltip="CFG scale of the low-noise model.",
                ),  # fmt: skip
                io.Float.Input(
                    "boundary",
                    default=WAN22_BOUNDARY,
                    min=0.0,
                    max=1000.0,
                    step=0.005,
                    tooltip="σ where the low-noise model takes over, on the model's σ scale (Wan 2.2 A14B text-to-"
                    "video 0.875, image-to-video 0.9; for SDXL base + refiner e.g. 1.0, the last ~20 % of steps).",
                ),
                io.Conditioning.Input(
                    "positive_low",
                    optional=True,
                    tooltip="The low-noise model's positive conditioning (default: 'positive'; "
                    "an SDXL refiner needs its own CLIP's).",
                ),  # fmt: skip
                io.Conditioning.Input(
                    "negative_low",
                    optional=True,
                    tooltip="The low-noise model's negative conditioning (default: 'negative').",
                ),
            ],
            outputs=[io.Guider.Output(display_name="guider", tooltip="For SamplerCustomAdvanced.")],
        )

    @classmethod
    def execute(cls, model_high, model_low, positive, negative, cfg, cfg_low, boundary, positive_low=None,
                negative_low=None) -> io.NodeOutput:  # fmt: skip
        try:
            guider = make_guider(model_high, model_low, positive, negative, cfg, boundary, positive_low, negative_low,
                                 cfg_low)  # fmt: skip
        except ValueError as e:
            raise NodeError(cls.DISPLAY, str(e)) from None
        return io.NodeOutput(guider)


NODES = [EvoSearchSchedule, EvoSearchMutation, EvoSearchSampler, EvoSearchKSampler, EvoSearchResults,
         EvoSearchTwoExpertGuider]  # fmt: skip
