"""The SAMPLER that runs EvoSearch inside any ComfyUI sampling call (``SamplerCustomAdvanced`` or the KSampler node).

``SearchSampler.sample`` receives exactly what ComfyUI gives every sampler — the guider (CFG, APG, model patches
already applied), the sigmas, the NOISE tensor and its seed, the latent and its mask — and for each latent of the
batch runs :func:`evosearch.search` over a population of that latent: decoding candidates with the VAE (or a cheaper
scoring VAE), scoring them with the reward under ComfyUI's model management, reporting progress with a preview of the
best so far, and honouring ``/interrupt`` before every model call. It returns the best sample per latent.

Every sampling call leaves an immutable :class:`RunRecord` (final population, scores, report) in the sampler's
:class:`RunLog`, keyed by a fingerprint of the LATENT the call returned, so a results node reads the run that
produced *its* latent even when one sampler serves several sampling nodes.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import comfy.model_management
import comfy.samplers
import comfy.utils
import latent_preview
import torch

from .. import evosearch as es
from ..rewards.protocol import reward_traits
from .comfy_process import ComfyProcess
from .compat import as_scored_images, free_memory, ignores_initial_noise, models_to_restore, preview_frame
from .reward_runtime import reward_accepts_video, score_images

log = logging.getLogger("evosearch.comfy")

__all__ = ["DecodingReward", "NodeError", "RunLog", "RunRecord", "SearchSampler", "latent_fingerprint"]


#: Said when the model's sampling discards the initial noise (newer image-to-image flow samplings).
IGNORED_NOISE_WARNING = (
    "this model's sampling ignores the initial noise (an image-to-image flow), so the initial noises and their "
    "mutations make no difference; only the sampler's own noise and intermediate generations vary the individuals"
)


class NodeError(ValueError):
    """A bad input, reported with the node's display name in front."""

    def __init__(self, node: str, message: str) -> None:
        super().__init__(f"{node}: {message}")


def latent_fingerprint(samples: torch.Tensor) -> str:
    """A digest of a LATENT's samples (shape, dtype, bytes): how a results node finds the run that made them."""
    data = samples.detach().to("cpu", torch.float32).contiguous()
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(tuple(data.shape)).encode())
    digest.update(data.numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class RunRecord:
    """What one sampling call of a search sampler produced (one search per latent of the batch)."""

    results: tuple[es.SearchResult, ...]
    population: torch.Tensor  #: final populations of all latents, VAE space, best first per latent
    decodes: int
    decode_seconds: float
    reward_seconds: float
    seconds: float
    warnings: tuple[str, ...]
    sampler_name: str
    output: str  #: fingerprint of the LATENT samples the sampling call returned
    nfe_per_model: dict[str, int] = field(default_factory=dict)  #: two-expert guiders: evaluations per expert
    #: per latent: the best finished samples of the search (VAE space, best first) and their rewards
    fame: tuple[tuple[torch.Tensor, torch.Tensor], ...] = ()

    @property
    def scores(self) -> list[float]:
        return [float(s) for r in self.results for s in r.rewards]

    def options(self, k: int) -> tuple[torch.Tensor, list[float]]:
        """``k`` distinct good samples per latent (VAE space, best first; see ``evosearch.distinct_options``) and
        their rewards; ``k = 0`` gives the final population. A search that evolved on islands gives one option per
        island first, from its final population; others pick from their best finished samples."""
        if k <= 0 or not self.fame:
            return self.population, self.scores
        samples, scores, offset = [], [], 0
        for result, (fame_samples, fame_rewards) in zip(self.results, self.fame):
            n = len(result.samples)
            if result.lineages is not None:
                fame_samples, fame_rewards = self.population[offset : offset + n], result.rewards
            picked = es.distinct_options(fame_samples, fame_rewards, k, lineages=result.lineages)
            samples.append(fame_samples[picked])
            scores += [float(r) for r in fame_rewards[picked]]
            offset += n
        return torch.cat(samples), scores

    def report(self) -> dict[str, object]:
        """Strict-JSON report: method, compute (planned and spent), seconds split into model / decode / reward."""
        first = self.results[0]
        model_seconds = max(0.0, self.seconds - self.decode_seconds - self.reward_seconds)
        return es.strict_json(
            {
                "method": first.schedule.strategy,
                "fitness": first.schedule.fitness,
                "strategy": first.schedule.strategy_class.title,
                "sampler": self.sampler_name,
                "latents": len(self.results),
                "nfe": sum(r.nfe for r in self.results),
                "planned_nfe": sum(r.planned_nfe or 0 for r in self.results),
                "decodes": self.decodes,
                "reward_calls": sum(r.reward_calls for r in self.results),
                "seconds": round(self.seconds, 3),
                "model_seconds": round(model_seconds, 3),
                "decode_seconds": round(self.decode_seconds, 3),
                "reward_seconds": round(self.reward_seconds, 3),
                "best_rewards": [r.best_reward for r in self.results],
                **({"nfe_per_model": dict(self.nfe_per_model)} if self.nfe_per_model else {}),
                "warnings": list(self.warnings),
                "searches": [r.report() for r in self.results],
            }
        )  # type: ignore[return-value]

    def summary(self) -> str:
        """Two lines for the node's face: what was spent, and any warning."""
        rep = self.report()
        best = ", ".join("n/a" if b is None else f"{b:.4g}" for b in rep["best_rewards"])  # type: ignore[union-attr]
        lines = [
            f"{rep['strategy']} · {rep['sampler']}: spent {rep['nfe']:,} NFE (planned {rep['planned_nfe']:,}), "
            f"{rep['decodes']} decodes, {rep['reward_calls']} reward calls in {rep['seconds']:.1f} s "
            f"(model {rep['model_seconds']:.1f} s, decode {rep['decode_seconds']:.1f} s, reward "
            f"{rep['reward_seconds']:.1f} s); best reward {best}",
        ]
        lines += [f"⚠ {w}" for w in self.warnings]
        return "\n".join(lines)


class RunLog:
    """The runs of one search sampler, newest last, at most :attr:`KEEP` (an output's handle to them)."""

    KEEP = 16

    def __init__(self) -> None:
        self._runs: OrderedDict[str, RunRecord] = OrderedDict()

    def add(self, record: RunRecord) -> None:
        self._runs.pop(record.output, None)
        self._runs[record.output] = record
        while len(self._runs) > self.KEEP:
            self._runs.popitem(last=False)

    @property
    def last(self) -> RunRecord | None:
        return next(reversed(self._runs.values())) if self._runs else None

    def __len__(self) -> int:
        return len(self._runs)

    def find(self, samples: torch.Tensor) -> RunRecord | None:
        """The run whose output LATENT had exactly these samples."""
        return self._runs.get(latent_fingerprint(samples))


class DecodingReward:
    """The engine's reward: model-space x0 → VAE decode → ``reward.score`` (under model management) → scores.

    Counts decodes, refuses video latents for image-only rewards, and afterwards requests the models the guider
    had loaded — the diffusion model included — again, so they stay where they were when both fit.
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
    """One progress bar over the whole search (NFE units) and a live preview of the best sample so far.

    Previews follow ComfyUI's ``--preview-method`` (none: no preview). With ``taesd`` (and the decoder in
    ``models/vae_approx``) the best is previewed through TAESD; otherwise the best finished sample is decoded with the
    scoring VAE whenever it changes (at most every ``decode_interval`` seconds), and before any sample has finished
    the x0 prediction is previewed with ComfyUI's previewer. Small images are enlarged so they can be judged.
    """

    def __init__(
        self,
        latents: int,
        model_patcher: object,
        vae: object | None = None,
        base_model: object | None = None,
        observer: Callable[[es.SearchEvent], None] | None = None,
        min_preview_interval: float = 0.5,
        decode_interval: float = 2.0,
    ) -> None:
        self.latents = latents
        self.observer = observer
        self.bar: comfy.utils.ProgressBar | None = None
        self.offset = 0
        self.vae, self.base_model = vae, base_model
        try:
            self.previewer = latent_preview.get_previewer(model_patcher.load_device, model_patcher.model.latent_format)
        except Exception:  # noqa: BLE001 - previews are optional; a missing decoder must not stop sampling
            self.previewer = None
        self.taesd = isinstance(self.previewer, latent_preview.TAESDPreviewerImpl)
        self.interval, self.decode_interval = min_preview_interval, decode_interval
        self.last_preview = self.last_decode = float("-inf")
        self.shown_best: torch.Tensor | None = None

    def _frame(self, x0: torch.Tensor) -> torch.Tensor:
        """One sample (a video's middle frame) in the layout the previewer takes (video previewers want 5-D)."""
        return preview_frame(self.previewer, x0)

    @staticmethod
    def _enlarged(image: object) -> object:
        """Nearest-neighbour enlargement of a small preview (32×32 demo images are unreadable at their own size)."""
        width, height = image.size
        factor = max(1, 256 // max(width, height))
        return image.resize((width * factor, height * factor), resample=0) if factor > 1 else image

    def _previewer_image(self, x0: torch.Tensor) -> tuple | None:
        try:
            kind, image, size = self.previewer.decode_latent_to_preview_image("JPEG", self._frame(x0))
            return kind, self._enlarged(image), size
        except Exception:  # noqa: BLE001 - previews are optional
            return None

    def _decoded_image(self, best: torch.Tensor) -> tuple | None:
        from PIL import Image

        try:
            sample = best[:1] if best.dim() < 5 else best[:1, :, best.shape[2] // 2 : best.shape[2] // 2 + 1]
            images = self.vae.decode(self.base_model.process_latent_out(sample.float()))
            while images.dim() > 4:  # [1, T, H, W, 3]: the frame
                images = images[:, images.shape[1] // 2]
            pixels = (images[0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            return "JPEG", self._enlarged(Image.fromarray(pixels)), latent_preview.MAX_PREVIEW_RESOLUTION
        except Exception:  # noqa: BLE001 - previews are optional
            return None

    def _preview(self, event: es.SearchEvent) -> tuple | None:
        if self.previewer is None:  # --preview-method none (ComfyUI's default): the user asked for no previews
            return None
        now = time.perf_counter()
        best = event.best
        if best is not None and best is not self.shown_best:
            if self.taesd and now - self.last_preview >= self.interval:
                self.shown_best, self.last_preview = best, now
                return self._previewer_image(best)
            if self.vae is not None and self.base_model is not None and now - self.last_decode >= self.decode_interval:
                self.shown_best, self.last_preview, self.last_decode = best, now, now
                return self._decoded_image(best)
        if best is None and event.denoised is not None and now - self.last_preview >= self.interval:
            self.last_preview = now
            return self._previewer_image(event.denoised)
        return None

    def __call__(self, event: es.SearchEvent) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        if self.observer is not None:
            self.observer(event)
        total = max(event.total_nfe * self.latents, 1)
        if self.bar is None:
            self.bar = comfy.utils.ProgressBar(total)
        self.bar.update_absolute(min(self.offset + event.nfe, total), total, self._preview(event))


class SearchSampler(comfy.samplers.KSAMPLER):
    """A ``SAMPLER`` that runs EvoSearch (or Best-of-N / particle sampling) around an inner sampler.

    ``scoring_vae`` (optional) decodes every candidate the reward scores (e.g. a TAESD: cheap); the returned latent
    is decoded by the user's own VAE downstream. ``runs`` collects one :class:`RunRecord` per sampling call.
    """

    def __init__(
        self,
        inner: comfy.samplers.KSAMPLER,
        vae: object,
        reward: object,
        spec: es.ScheduleSpec,
        mutation: es.Mutation,
        chunk_size: int = 0,
        node: str = "EvoSearch Sampler",
        runs: RunLog | None = None,
        scoring_vae: object | None = None,
        observer: Callable[[es.SearchEvent], None] | None = None,
    ) -> None:
        super().__init__(inner.sampler_function, inner.extra_options, inner.inpaint_options)
        self.inner = inner
        self.vae = vae
        self.scoring_vae = scoring_vae
        self.reward = reward
        self.spec = spec
        self.mutation = mutation
        self.chunk_size = int(chunk_size)
        self.node = node
        self.runs = runs if runs is not None else RunLog()
        self.observer = observer  #: also receives every search event (tools, benchmarks, tests)

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
        models = models_to_restore(model_wrap)

        def reload() -> None:
            if models:
                comfy.model_management.load_models_gpu(models)

        return reload

    def _check_inputs(self) -> None:
        if self.vae is None:
            raise NodeError(self.node, "no VAE is connected: the reward scores decoded images; connect the model's VAE")
        if reward_traits(self.reward).batch_relative:
            raise NodeError(
                self.node,
                "the reward normalises scores within each batch (rank or z-score combination), but a search compares "
                "scores across chunks and generations; set EvoSearch Combine Rewards' normalisation to 'raw'",
            )

    def _check_scoring_vae(self, latent_format: object) -> None:
        """A scoring VAE must decode this model's latents: one of another family (a 4-channel TAESD on a 16-channel
        Flux or Wan model, an image decoder on video latents) would otherwise fail deep inside the first decode."""
        if self.scoring_vae is None:
            return
        have, want = getattr(self.scoring_vae, "latent_channels", None), getattr(latent_format, "latent_channels", None)
        have_dims = getattr(self.scoring_vae, "latent_dim", None)
        want_dims = getattr(latent_format, "latent_dimensions", 2)
        if (
            isinstance(have, int)
            and isinstance(want, int)
            and have != want
            or (isinstance(have_dims, int) and isinstance(want_dims, int) and have_dims != want_dims)
        ):
            kind = {2: "image", 3: "video"}
            raise NodeError(
                self.node,
                f"scoring_vae decodes {have}-channel {kind.get(have_dims, '?')} latents but this model's latents are "
                f"{want}-channel {kind.get(want_dims, '?')} latents; connect the fast decoder of the model's own "
                "family (taesd for SD1.x/2.x, taesdxl for SDXL, taesd3 for SD3, taef1 for Flux) or leave scoring_vae "
                "unconnected",
            )

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
        self._check_inputs()
        self._check_scoring_vae(model_wrap.inner_model.latent_format)
        ignored_noise = ignores_initial_noise(model_wrap.inner_model.model_sampling)
        if latent_image is None:
            latent_image = torch.zeros_like(noise)
        seed = int(extra_args.get("seed", 0) or 0)
        base_model = model_wrap.inner_model
        reward_fn = DecodingReward(
            self.node, self.scoring_vae or self.vae, base_model, self.reward, self._reloader(model_wrap)
        )
        max_denoise = self.max_denoise(model_wrap, sigmas)
        shape = tuple(noise.shape[1:])
        batch = noise.shape[0]
        chunk = self._chunk_size(model_wrap, shape, max(schedule.population))
        progress = _Progress(batch, model_wrap.model_patcher, self.scoring_vae or self.vae, base_model, self.observer)
        storage = comfy.model_management.intermediate_device()
        experts = getattr(getattr(model_wrap, "owner", None), "evaluations", None)  # a TwoExpertGuider's counts
        experts_before = dict(experts) if experts is not None else {}
        results: list[es.SearchResult] = []
        for b in range(batch):
            process = ComfyProcess(
                model_wrap, sigmas, self.inner, extra_args, noise[b : b + 1], latent_image[b : b + 1],
                None if denoise_mask is None else denoise_mask[b : b + 1], max_denoise,
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
            results.append(result)
            progress.offset += result.nfe
        best = torch.cat([r.best.to(noise.device) for r in results])
        warnings = tuple(dict.fromkeys([*(w for r in results for w in r.warnings),
                                        *([IGNORED_NOISE_WARNING] if ignored_noise else [])]))  # fmt: skip
        for warning in warnings:
            log.warning("%s: %s", self.node, warning)
        output = base_model.process_latent_out(best.to(torch.float32)).to(comfy.model_management.intermediate_device())
        self.runs.add(
            RunRecord(
                results=tuple(results),
                population=torch.cat([base_model.process_latent_out(r.samples.float()) for r in results]).cpu(),
                decodes=reward_fn.decodes,
                decode_seconds=reward_fn.decode_seconds,
                reward_seconds=reward_fn.reward_seconds,
                seconds=time.perf_counter() - started,
                warnings=warnings,
                sampler_name=results[0].sampler,
                output=latent_fingerprint(output),
                nfe_per_model={k: v - experts_before.get(k, 0) for k, v in (experts or {}).items()},
                fame=tuple(
                    (base_model.process_latent_out(r.fame_samples.float()).cpu(), r.fame_rewards.clone())
                    for r in results
                    if r.fame_samples is not None and r.fame_rewards is not None
                ),
            )
        )
        if callback is not None:
            callback(steps - 1, best, best, steps)  # final preview, and SamplerCustomAdvanced's denoised_output
        return best
