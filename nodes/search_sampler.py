"""The SAMPLER that runs EvoSearch inside any ComfyUI sampling call (``SamplerCustomAdvanced`` or the KSampler node).

``SearchSampler.sample`` receives exactly what ComfyUI gives every sampler — the guider (CFG, APG, model patches
already applied), the sigmas, the NOISE tensor and its seed, the latent and its mask — and for each latent of the
batch runs :func:`evosearch.search` over a population of that latent: decoding candidates with the VAE, scoring them
with the reward under ComfyUI's model management, reporting progress with a preview of the best so far, and honouring
``/interrupt`` before every model call. It returns the best sample per latent; the whole run (final population,
scores, report) goes to its :class:`SearchRun` for the report outputs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import comfy.model_management
import comfy.samplers
import comfy.utils
import latent_preview
import torch

from .. import evosearch as es
from .comfy_process import ComfyProcess, choose_stochastic_sampler
from .compat import as_scored_images, free_memory, ignores_initial_noise, models_to_restore, preview_frame
from ..rewards.protocol import reward_traits
from .reward_runtime import reward_accepts_video, score_images

log = logging.getLogger("evosearch.comfy")

__all__ = ["SearchSampler", "SearchRun", "DecodingReward", "NodeError"]

#: Said when the model's sampling discards the initial noise (newer image-to-image flow samplings).
IGNORED_NOISE_WARNING = (
    "this model's sampling ignores the initial noise (an image-to-image flow), so the initial noises and their "
    "mutations make no difference; only the sampler's own noise and intermediate generations vary the individuals"
)


class NodeError(ValueError):
    """A bad input, reported with the node's display name in front."""

    def __init__(self, node: str, message: str) -> None:
        super().__init__(f"{node}: {message}")


@dataclass
class SearchRun:
    """What the last search of a sampler produced (per latent of the batch), for the report/results outputs."""

    results: list[es.SearchResult] = field(default_factory=list)
    decodes: int = 0
    decode_seconds: float = 0.0
    reward_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    sampler_name: str = ""
    population: torch.Tensor | None = None  #: final populations of all latents, VAE space, best first per latent
    seconds: float = 0.0

    def report(self) -> dict[str, object]:
        items = [r.report() for r in self.results]
        total_nfe = sum(r.nfe for r in self.results)
        return {
            "method": self.results[0].schedule.strategy if self.results else None,
            "sampler": self.sampler_name,
            "latents": len(self.results),
            "nfe": total_nfe,
            "decodes": self.decodes,
            "reward_calls": sum(r.reward_calls for r in self.results),
            "seconds": round(self.seconds, 3),
            "decode_seconds": round(self.decode_seconds, 3),
            "reward_seconds": round(self.reward_seconds, 3),
            "best_rewards": [r.best_reward for r in self.results],
            "warnings": list(self.warnings),
            "searches": items,
        }


class DecodingReward:
    """The engine's reward: model-space x0 → VAE decode → ``reward.score`` (under model management) → scores.

    Counts decodes, refuses video latents for image-only rewards, and puts the diffusion models back on their
    device after the VAE and reward had their turn.
    """

    def __init__(self, node: str, vae: object, base_model: object, reward: object, reload: Callable[[], None]) -> None:
        self.node = node
        self.vae = vae
        self.base_model = base_model
        self.reward = reward
        self.reload = reload
        self.decodes = 0
        self.decode_seconds = 0.0
        self.reward_seconds = 0.0

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        started = time.perf_counter()
        latent = self.base_model.process_latent_out(x0.float())
        images = self.vae.decode(latent)
        decoded = time.perf_counter()
        self.decode_seconds += decoded - started
        images = as_scored_images(images, self.base_model.latent_format, x0)
        if images.dim() == 5 and not reward_accepts_video(self.reward):
            raise NodeError(
                self.node,
                f"the latent is a video ({tuple(images.shape[1:4])} frames×H×W after decoding) but the reward "
                f"{type(self.reward).__name__} scores still images only; use a video reward or a frame-sampling "
                "video wrapper from EvoSearch Load Reward",
            )
        self.decodes += x0.shape[0]
        try:
            scores = score_images(self.reward, images)
        finally:
            self.reward_seconds += time.perf_counter() - decoded
            self.reload()
        return scores.float().cpu()


class _Progress:
    """One progress bar over the whole search (NFE units) with a JPEG preview of the best so far."""

    def __init__(self, total: int, model_patcher: object, min_preview_interval: float = 0.5) -> None:
        self.bar = comfy.utils.ProgressBar(max(total, 1))
        self.total = max(total, 1)
        self.offset = 0
        try:
            self.previewer = latent_preview.get_previewer(model_patcher.load_device, model_patcher.model.latent_format)
        except Exception:  # noqa: BLE001 - previews are optional; a missing decoder must not stop sampling
            self.previewer = None
        self.interval = min_preview_interval
        self.last_preview = 0.0

    def _preview(self, x0: torch.Tensor | None) -> tuple | None:
        if self.previewer is None or x0 is None:
            return None
        now = time.perf_counter()
        if now - self.last_preview < self.interval:
            return None
        self.last_preview = now
        sample = preview_frame(self.previewer, x0)  # video: the middle frame, in the layout the previewer takes
        try:
            return self.previewer.decode_latent_to_preview_image("JPEG", sample)
        except Exception:  # noqa: BLE001 - previews are optional
            return None

    def __call__(self, event: es.SearchEvent) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        preview = self._preview(event.best if event.best is not None else event.denoised)
        self.bar.update_absolute(min(self.offset + event.nfe, self.total), self.total, preview)


class SearchSampler(comfy.samplers.KSAMPLER):
    """A ``SAMPLER`` that runs EvoSearch (or Best-of-N / particle sampling) around an inner stochastic sampler."""

    def __init__(
        self,
        inner: comfy.samplers.KSAMPLER,
        vae: object,
        reward: object,
        spec: es.ScheduleSpec,
        mutation: es.Mutation,
        chunk_size: int = 0,
        node: str = "EvoSearch Sampler",
        run: SearchRun | None = None,
    ) -> None:
        super().__init__(inner.sampler_function, inner.extra_options, inner.inpaint_options)
        self.inner = inner
        self.vae = vae
        self.reward = reward
        self.spec = spec
        self.mutation = mutation
        self.chunk_size = int(chunk_size)
        self.node = node
        self.run = run if run is not None else SearchRun()

    # ------------------------------------------------------------------ helpers
    #: Largest automatic chunk: beyond it batching gains little, while one model call (the interrupt and progress
    #: granularity) grows long.
    AUTO_CHUNK_MAX = 16

    def _chunk_size(self, model_wrap: object, shape: tuple[int, ...], population: int) -> int | None:
        """Individuals per model call: the node's value, or (0) what fits in free memory with CFG's doubled batch,
        at most :attr:`AUTO_CHUNK_MAX`."""
        if self.chunk_size > 0:
            return self.chunk_size
        population = min(population, self.AUTO_CHUNK_MAX)
        patcher = model_wrap.model_patcher
        try:
            per_item = float(patcher.model.memory_required([2, *shape]))  # cond + uncond of one individual
            free = free_memory(patcher, patcher.load_device)
        except Exception:  # noqa: BLE001 - estimates are best effort; fall back to the cap
            return population
        fits = int(free * 0.8 // max(per_item, 1.0))
        return max(1, min(fits, population))

    def _reloader(self, model_wrap: object) -> Callable[[], None]:
        loaded = models_to_restore(model_wrap)

        def reload() -> None:
            if loaded:
                comfy.model_management.load_models_gpu(loaded)

        return reload

    # ------------------------------------------------------------------ ComfyUI's Sampler.sample
    def sample(
        self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None, disable_pbar=False
    ):  # noqa: ANN001,E501
        started = time.perf_counter()
        steps = int(sigmas.shape[-1]) - 1
        try:
            schedule = self.spec.resolve(steps)
        except ValueError as e:
            raise NodeError(self.node, f"{e} (the sampler runs {steps} steps)") from None
        needs_stochastic = schedule.strategy != "best_of_n" and any(s > 0 for s in schedule.evolution_steps)
        choice = choose_stochastic_sampler(self.inner, needs_stochastic)
        run = self.run
        run.results, run.decodes, run.warnings, run.sampler_name, run.population = [], 0, [], choice.name, None
        run.decode_seconds = run.reward_seconds = 0.0
        if choice.warning:
            log.warning("%s: %s", self.node, choice.warning)
            run.warnings.append(choice.warning)
        if ignores_initial_noise(model_wrap.inner_model.model_sampling):
            note = IGNORED_NOISE_WARNING
            log.warning("%s: %s", self.node, note)
            run.warnings.append(note)
        if self.vae is None:
            raise NodeError(self.node, "no VAE is connected: the reward scores decoded images; connect the model's VAE")
        if reward_traits(self.reward).batch_relative:
            raise NodeError(
                self.node,
                "the reward normalises scores within each batch (rank or z-score combination), but a search compares "
                "scores across chunks and generations; set EvoSearch Combine Rewards' normalisation to 'raw'",
            )
        if latent_image is None:
            latent_image = torch.zeros_like(noise)
        seed = int(extra_args.get("seed", 0) or 0)
        base_model = model_wrap.inner_model
        reward_fn = DecodingReward(self.node, self.vae, base_model, self.reward, self._reloader(model_wrap))
        max_denoise = self.max_denoise(model_wrap, sigmas)
        shape = tuple(noise.shape[1:])
        batch = noise.shape[0]
        chunk = self._chunk_size(model_wrap, shape, max(schedule.population))
        progress = _Progress(schedule.nfe(steps) * batch, model_wrap.model_patcher)
        storage = comfy.model_management.intermediate_device()
        bests = []
        for b in range(batch):
            process = ComfyProcess(
                model_wrap, sigmas, choice.sampler, extra_args, noise[b : b + 1], latent_image[b : b + 1],
                None if denoise_mask is None else denoise_mask[b : b + 1], max_denoise, stochastic=needs_stochastic,
            )  # fmt: skip
            try:
                result = es.search(
                    process, reward_fn, shape, schedule, seed=seed if b == 0 else es.derive_seed(seed, "latent", b),
                    chunk_size=chunk, mutation=self.mutation, callback=progress, storage_device=storage,
                    on_oom=lambda _: comfy.model_management.soft_empty_cache(),
                )  # fmt: skip
            except ValueError as e:
                if str(e).startswith(self.node):
                    raise
                raise NodeError(self.node, str(e)) from None
            run.results.append(result)
            progress.offset += result.nfe
            bests.append(result.best.to(noise.device))
            run.decodes = reward_fn.decodes
            run.decode_seconds, run.reward_seconds = reward_fn.decode_seconds, reward_fn.reward_seconds
        best = torch.cat(bests)
        run.seconds = time.perf_counter() - started
        run.population = torch.cat([base_model.process_latent_out(r.samples.float()) for r in run.results]).cpu()
        if callback is not None:
            callback(steps - 1, best, best, steps)  # final preview, and SamplerCustomAdvanced's denoised_output
        return best
