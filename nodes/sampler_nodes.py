"""EvoSearch nodes for sampling: schedule, mutation, the SAMPLER, the all-in-one KSampler and the results node.

Every node here is thin: the algorithm is :mod:`evosearch`, the ComfyUI plumbing is :mod:`.search_sampler`.
EvoSearch: He et al., "Scaling Image and Video Generation via Test-Time Evolutionary Search", arXiv 2505.17618.
"""

from __future__ import annotations

import comfy.sample
import comfy.samplers
from comfy_api.latest import io, ui

from .. import evosearch as es
from .compat import fix_empty_latent, schema_extras, strip_compression_keys
from .report import population_latent, report_json, reward_plot
from .search_sampler import NodeError, SearchRun, SearchSampler
from .types import MUTATION, REWARD, RUN, SCHEDULE

CATEGORY = "sampling/evosearch"
PAPER = "EvoSearch (He et al. 2025, arXiv 2505.17618)"

_SAMPLER_TOOLTIP = (
    "The stochastic sampler each individual runs (euler_ancestral, ddpm, dpmpp_2m_sde, er_sde, …). A deterministic "
    "one (euler, dpmpp_2m, heun, flow ODE samplers) works for Best-of-N and x_T-only schedules; when the schedule "
    "evolves intermediate steps it is swapped for its stochastic counterpart (euler → euler_ancestral, dpmpp_2m → "
    "dpmpp_2m_sde, otherwise euler_ancestral) with a warning in the log and the report."
)
_CHUNK_TOOLTIP = (
    "Most individuals per model call. 0 = automatic: what fits in free memory, at most 16. Results do not depend "
    "on it (each individual has its own noise streams); an out-of-memory error halves it and retries."
)


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
                    tooltip="budget_multiple: budget × one trajectory's NFE; budget_nfe: budget model "
                    "evaluations; custom: the two lists below; preset_*: the official code's "
                    "schedules (SD2.1 ×100, FLUX ×29, Wan ×20 at 50 steps), rescaled to your steps.",
                ),  # fmt: skip
                io.Combo.Input(
                    "strategy",
                    options=list(es.STRATEGIES),
                    default="evosearch",
                    tooltip="evosearch: evolve noise and intermediate latents. best_of_n: independent "
                    "samples, keep the best. particles: FK-steering particle sampling (resampling on "
                    "rewards of x0 predictions). All three spend the same NFE.",
                ),  # fmt: skip
                io.Float.Input(
                    "budget",
                    default=10.0,
                    min=1.0,
                    max=1e7,
                    step=1.0,
                    tooltip="For budget_multiple: how many single-image generations of compute to spend "
                    "(the paper's ×100 = 5,000 NFE at 50 steps). For budget_nfe: model evaluations.",
                ),  # fmt: skip
                io.String.Input(
                    "evolution_steps",
                    default="0, 20, 30, 40",
                    tooltip="custom mode: step indices (0 = the initial noise x_T) at which generations "
                    "form, increasing, each below the sampler's steps. Paper SD2.1 at 50 steps: "
                    "0, 20, 30, 40.",
                ),  # fmt: skip
                io.String.Input(
                    "population",
                    default="42, 26, 26, 26, 30",
                    tooltip="custom mode: one more entry than evolution_steps: the initial population, "
                    "then the children of each generation. Paper SD2.1: 42, 26, 26, 26, 30.",
                ),  # fmt: skip
                io.Int.Input(
                    "steps",
                    default=20,
                    min=1,
                    max=10000,
                    tooltip="Your sampler's step count, used only to show the cost here; at run time the "
                    "schedule is planned for the sampler's real steps.",
                ),  # fmt: skip
                io.Combo.Input(
                    "potential",
                    options=list(es.POTENTIALS),
                    default="max",
                    tooltip="particles only: FK-steering potential (max = the paper's baseline).",
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
                    options=list(es.SPEC_FITNESS),
                    default="auto",
                    tooltip="How a generation is scored. rollout: every individual is run to a finished image and "
                    "scored (the paper's EvoSearch; children cost their remaining steps). x0: the reward of the "
                    "model's x0 prediction at the evolution step (free in NFE, like FK-steering particles; the whole "
                    "population moves together). auto: rollout for EvoSearch, x0 for particles. On the demo model "
                    "EvoSearch with x0 fitness beats both baselines; rollout is the paper's and needs no decodable "
                    "x0 predictions.",
                ),  # fmt: skip
            ],
            outputs=[io.Custom(SCHEDULE).Output(display_name="schedule")],
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
                evolution_steps=es.parse_int_list(evolution_steps, "evolution_steps") if custom else (),
                population=es.parse_int_list(population, "population") if custom else (),
                potential=potential,
                lam=float(lam),
                fitness=fitness,
            )
            text = spec.describe(int(steps))
        except ValueError as e:
            raise NodeError(cls.DISPLAY, str(e)) from None
        return io.NodeOutput(spec, ui=ui.PreviewText(text))


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
            ],
            outputs=[io.Custom(MUTATION).Output(display_name="mutation")],
        )

    @classmethod
    def execute(cls, beta, intermediate, strength, elites, tournament) -> io.NodeOutput:
        try:
            mutation = es.Mutation(
                beta=float(beta),
                intermediate=intermediate,
                strength=float(strength),
                elites=None if int(elites) < 0 else int(elites),
                tournament=float(tournament) if float(tournament) < 1 else float(round(tournament)),
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
                    "vae", optional=True, tooltip="The VAE that decodes candidates for the reward (required)."
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
            ],
            outputs=[io.Sampler.Output(display_name="sampler"), io.Custom(RUN).Output(display_name="run")],
            # its run output is filled by the sampling node downstream: never share it between two nodes
            **schema_extras(not_idempotent=True, search_aliases=["evolutionary search", "best of n", "reward search"]),
        )

    @classmethod
    def execute(
        cls, reward, sampler_name, chunk_size, vae=None, sampler=None, schedule=None, mutation=None
    ) -> io.NodeOutput:  # noqa: E501
        if vae is None:
            raise NodeError(
                cls.DISPLAY, "no VAE is connected: the reward scores decoded images; connect the model's VAE"
            )
        try:
            inner = _inner_sampler(sampler_name, sampler)
        except TypeError as e:
            raise NodeError(cls.DISPLAY, str(e)) from None
        run = SearchRun()
        search = SearchSampler(inner, vae, reward, _spec_or_default(schedule), _mutation_or_default(mutation),
                                   chunk_size, node=cls.DISPLAY, run=run)  # fmt: skip
        return io.NodeOutput(search, run)


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
                    "vae", optional=True, tooltip="The VAE that decodes candidates for the reward (required)."
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
            ],
            outputs=[
                io.Latent.Output(display_name="best"),
                io.Latent.Output(display_name="population"),
                io.Float.Output(display_name="scores", is_output_list=True),
                io.String.Output(display_name="report"),
                io.Image.Output(display_name="plot"),
            ],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent_image, reward, seed, steps, cfg, sampler_name, scheduler,
                denoise, chunk_size, vae=None, schedule=None, mutation=None) -> io.NodeOutput:  # fmt: skip
        if vae is None:
            raise NodeError(
                cls.DISPLAY, "no VAE is connected: the reward scores decoded images; connect the model's VAE"
            )
        latent = fix_empty_latent(model, latent_image)
        check_latent_fits(cls.DISPLAY, model, latent)
        noise = comfy.sample.prepare_noise(latent, seed, latent_image.get("batch_index"))
        run = SearchRun()
        inner = _inner_sampler(sampler_name, None)
        spec, settings = _spec_or_default(schedule), _mutation_or_default(mutation)
        sampler = SearchSampler(inner, vae, reward, spec, settings, chunk_size, node=cls.DISPLAY, run=run)
        sigmas = comfy.samplers.KSampler(
            model, steps=steps, device=model.load_device, sampler=sampler_name, scheduler=scheduler,
            denoise=denoise, model_options=model.model_options,
        ).sigmas  # fmt: skip
        if sigmas.shape[-1] < 2:
            raise NodeError(cls.DISPLAY, f"denoise={denoise} with {steps} steps leaves no step to sample; raise either")
        samples = comfy.sample.sample_custom(
            model, noise, cfg, sampler, sigmas, positive, negative, latent,
            noise_mask=latent_image.get("noise_mask"), disable_pbar=True, seed=seed,
        )  # fmt: skip
        best = {k: v for k, v in strip_compression_keys(latent_image).items() if k != "samples"}
        best["samples"] = samples
        population, scores = population_latent(run, strip_compression_keys(latent_image))
        return io.NodeOutput(best, population, scores, report_json(run), reward_plot(run))


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
            ],
            outputs=[
                io.Latent.Output(display_name="population"),
                io.Float.Output(display_name="scores", is_output_list=True),
                io.String.Output(display_name="report"),
                io.Image.Output(display_name="plot"),
            ],
        )

    @classmethod
    def execute(cls, run, latent) -> io.NodeOutput:
        try:
            population, scores = population_latent(run, latent)
        except ValueError as e:
            raise NodeError(cls.DISPLAY, str(e)) from None
        return io.NodeOutput(population, scores, report_json(run), reward_plot(run))


NODES = [EvoSearchSchedule, EvoSearchMutation, EvoSearchSampler, EvoSearchKSampler, EvoSearchResults]
