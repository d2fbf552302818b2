"""Write the example workflows: UI format under workflows/ and API-format twins under tests/workflows/api/.

    COMFYUI_PATH=/path/to/ComfyUI python tools/make_workflows.py

Each workflow is declared once below as nodes with named widget values and links. The UI file is laid out from
ComfyUI's own node definitions (the ``/object_info`` view the frontend uses: input order, widget types,
``control_after_generate``), so its positional ``widgets_values`` match what the canvas would save; the API twin is
what ``/prompt`` accepts. tests/workflows/ converts every UI file back independently and checks it equals the twin.

Layout: every node is sized as the frontend sizes it (tools/workflow_layout.py: LiteGraph's title, slot and widget
heights, multiline text boxes, the image a run previews, the cost box of web/js/evosearch.js) and placed in columns
so that every link runs left to right; the browser test checks that nothing overlaps in the real frontend. The
top-level ``id`` is a UUID derived from the file name, so regenerating changes nothing. Reward loaders name their
kind's official file (not ``auto``) so the frontend's Missing Models dialog lists it with its source.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("make_workflows")
sys.path[:0] = [str(REPO / "tests"), str(REPO)]  # tests/support, and tools/ as a package

from tools.workflow_layout import (  # noqa: E402
    DOM_MIN_HEIGHT,
    IMAGE_PREVIEW_HEIGHT,
    INFO_HEIGHTS,
    NODE_PADDING,
    SLOT_HEIGHT,
    TITLE_HEIGHT,
    WIDGETS_PADDING,
    Box,
    Widget,
    layout,
    node_size,
    overlaps,
    text_width,
)

#: Body widths (px) by node type; a node whose labels need more gets more (workflow_layout.node_size).
DEFAULT_WIDTH = 300
WIDTHS = {"CLIPTextEncode": 400, "EvoSearchSchedule": 360, "EvoSearchKSampler": 340, "EvoSearchLoadReward": 340,
          "EvoSearchResults": 300, "PreviewAny": 360, "PreviewImage": 300, "SaveImage": 300,
          "SaveVideo": 320}  # fmt: skip
NOTE_WIDTH = 400
#: Heights of multiline text boxes (node type, widget) → px; others get the frontend's minimum.
DOM_HEIGHTS = {("CLIPTextEncode", "text"): 110, ("EvoSearchLoadReward", "prompt"): 70, ("PreviewAny", "preview"): 170}
#: The canvas of a 1920×1080 browser window (sidebar, tabs and menu bar taken off) and the least zoom that draws text.
VIEW = (1860, 940)
MIN_READABLE_SCALE = 0.62
#: Nodes that show an image or video after a run (room reserved so they do not grow over their neighbours).
RESULT_PREVIEWS = {"PreviewImage", "SaveImage", "SaveVideo"}

NEGATIVE = "blurry, low quality, distorted, watermark, text"
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}

HF = "https://huggingface.co"
MODELS = {
    "sd15": {"name": "v1-5-pruned-emaonly-fp16.safetensors", "directory": "checkpoints",
             "url": f"{HF}/Comfy-Org/stable-diffusion-v1-5-archive/resolve/main/v1-5-pruned-emaonly-fp16.safetensors?download=true"},
    "sdxl": {"name": "sd_xl_base_1.0.safetensors", "directory": "checkpoints",
             "url": f"{HF}/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/sd_xl_base_1.0.safetensors?download=true"},
    "flux": {"name": "flux1-dev.safetensors", "directory": "diffusion_models",
             "url": f"{HF}/black-forest-labs/FLUX.1-dev/resolve/main/flux1-dev.safetensors?download=true"},
    "clip_l": {"name": "clip_l.safetensors", "directory": "text_encoders",
               "url": f"{HF}/comfyanonymous/flux_text_encoders/resolve/main/clip_l.safetensors?download=true"},
    "t5xxl": {"name": "t5xxl_fp16.safetensors", "directory": "text_encoders",
              "url": f"{HF}/comfyanonymous/flux_text_encoders/resolve/main/t5xxl_fp16.safetensors?download=true"},
    "flux_vae": {"name": "ae.safetensors", "directory": "vae",
                 "url": f"{HF}/black-forest-labs/FLUX.1-schnell/resolve/main/ae.safetensors?download=true"},
    "wan": {"name": "wan2.1_t2v_1.3B_fp16.safetensors", "directory": "diffusion_models",
            "url": f"{HF}/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors?download=true"},
    "umt5": {"name": "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "directory": "text_encoders",
             "url": f"{HF}/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors?download=true"},
    "wan_vae": {"name": "wan_2.1_vae.safetensors", "directory": "vae",
                "url": f"{HF}/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/vae/wan_2.1_vae.safetensors?download=true"},
    "wan22_high": {"name": "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors", "directory": "diffusion_models",
                   "url": f"{HF}/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files/diffusion_models/wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors?download=true"},
    "wan22_low": {"name": "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors", "directory": "diffusion_models",
                  "url": f"{HF}/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files/diffusion_models/wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors?download=true"},
    "imagereward": {"name": "imagereward/ImageReward.pt", "directory": "rewards",
                    "url": f"{HF}/THUDM/ImageReward/resolve/main/ImageReward.pt?download=true"},
    "clipscore": {"name": "clipscore/clip-vit-large-patch14", "directory": "rewards",
                  "url": f"{HF}/openai/clip-vit-large-patch14"},
}  # fmt: skip


@dataclass
class N:
    """One node: id, class, column and place in it, widget values by name, links {input: (source id, output slot)}."""

    id: int
    type: str
    col: int
    row: int
    widgets: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)
    models: list = field(default_factory=list)
    title: str | None = None


@dataclass
class Note:
    col: int
    row: int
    text: str


#: The demos' images are 32×32: previews enlarge them (nearest neighbour keeps the pixels honest) so they can be judged.
_ENLARGE = {"upscale_method": "nearest-exact", "scale_by": 8.0}


def _reward(node_id: int, col: int, row: int, kind: str, prompt: str, **video: object) -> N:
    """Load Reward naming the kind's official file, so the Missing Models dialog offers it (docs/comfyui.md §9)."""
    widgets = {"kind": kind, "model": MODELS[kind]["name"], "dtype": "auto", "prompt": prompt, **video}
    return N(node_id, "EvoSearchLoadReward", col, row, widgets, models=[MODELS[kind]])


def _schedule(node_id: int, col: int, row: int, **widgets: object) -> N:
    # evolution_steps and population (custom mode only) keep the node's defaults
    base = {"mode": "budget_multiple", "strategy": "evosearch", "budget": 10.0, "steps": 25, "potential": "max",
            "lam": 10.0}  # fmt: skip
    return N(node_id, "EvoSearchSchedule", col, row, {**base, **widgets})


def _checkpoint_t2i(name: str, model: str, size: int, prompt: str, steps: int, cfg: float, note: str) -> dict:
    nodes = [
        N(1, "CheckpointLoaderSimple", 0, 1, {"ckpt_name": MODELS[model]["name"]}, models=[MODELS[model]]),
        N(2, "CLIPTextEncode", 1, 0, {"text": prompt}, {"clip": (1, 1)}, title="Positive prompt"),
        N(3, "CLIPTextEncode", 1, 1, {"text": NEGATIVE}, {"clip": (1, 1)}, title="Negative prompt"),
        N(4, "EmptyLatentImage", 1, 2, {"width": size, "height": size, "batch_size": 1}),
        _reward(5, 0, 2, "imagereward", prompt),
        _schedule(6, 1, 3, steps=steps),
        N(7, "EvoSearchMutation", 1, 4),
        N(
            8,
            "EvoSearchKSampler",
            2,
            0,
            {
                "seed": 42,
                "steps": steps,
                "cfg": cfg,
                "sampler_name": "euler_ancestral",
                "scheduler": "normal",
                "denoise": 1.0,
                "chunk_size": 0,
            },
            {
                "model": (1, 0),
                "positive": (2, 0),
                "negative": (3, 0),
                "latent_image": (4, 0),
                "vae": (1, 2),
                "reward": (5, 0),
                "schedule": (6, 0),
                "mutation": (7, 0),
            },
        ),
        N(9, "VAEDecode", 3, 0, links={"samples": (8, 0), "vae": (1, 2)}, title="Decode best"),
        N(10, "SaveImage", 4, 0, {"filename_prefix": f"EvoSearch/{name}"}, {"images": (9, 0)}),
        N(11, "VAEDecode", 3, 1, links={"samples": (8, 1), "vae": (1, 2)}, title="Decode final population"),
        N(12, "PreviewImage", 4, 1, links={"images": (11, 0)}, title="Final population, best first"),
        N(13, "PreviewImage", 3, 2, links={"images": (8, 4)}, title="Reward vs NFE"),
        N(14, "PreviewAny", 3, 3, links={"source": (8, 3)}, title="Search report"),
    ]
    return {"nodes": nodes, "note": Note(0, 0, note)}


def workflows() -> dict[str, dict]:
    fox = "a photo of a red fox standing in fresh snow at golden hour, sharp focus, highly detailed"
    lighthouse = "a lighthouse on a cliff above a stormy sea, dramatic clouds, cinematic lighting, 8k"
    sd15_note = (
        "## EvoSearch, SD1.5 text-to-image\n\nThe EvoSearch KSampler spends a budget (here ×10 one image's compute) "
        "searching initial noises and intermediate latents for the image ImageReward likes best. Put "
        "`ImageReward.pt` in `models/rewards/imagereward/`. Raise the budget in EvoSearch Schedule for better "
        "images (the Schedule shows what a run will cost); switch its strategy to best_of_n to compare at the same "
        "compute. The report shows the NFE, decodes, reward calls and seconds spent."
    )
    sdxl_note = sd15_note.replace("SD1.5", "SDXL")
    flux = [
        N(
            1,
            "UNETLoader",
            0,
            1,
            {"unet_name": MODELS["flux"]["name"], "weight_dtype": "default"},
            models=[MODELS["flux"]],
        ),
        N(
            2,
            "DualCLIPLoader",
            0,
            2,
            {
                "clip_name1": MODELS["clip_l"]["name"],
                "clip_name2": MODELS["t5xxl"]["name"],
                "type": "flux",
                "device": "default",
            },
            models=[MODELS["clip_l"], MODELS["t5xxl"]],
        ),
        N(3, "VAELoader", 0, 3, {"vae_name": MODELS["flux_vae"]["name"]}, models=[MODELS["flux_vae"]]),
        N(4, "CLIPTextEncode", 1, 0, {"text": lighthouse}, {"clip": (2, 0)}, title="Prompt"),
        N(5, "FluxGuidance", 2, 0, {"guidance": 3.5}, {"conditioning": (4, 0)}),
        N(6, "BasicGuider", 3, 0, links={"model": (1, 0), "conditioning": (5, 0)}),
        N(7, "RandomNoise", 2, 1, {"noise_seed": 42}),
        _reward(8, 1, 1, "imagereward", lighthouse),
        _schedule(9, 1, 2, mode="preset_flux", steps=28),
        N(10, "EvoSearchMutation", 1, 3),
        N(
            11,
            "EvoSearchSampler",
            2,
            2,
            {"sampler_name": "euler_ancestral", "chunk_size": 0},
            {"vae": (3, 0), "reward": (8, 0), "schedule": (9, 0), "mutation": (10, 0)},
        ),
        N(12, "BasicScheduler", 2, 3, {"scheduler": "simple", "steps": 28, "denoise": 1.0}, {"model": (1, 0)}),
        N(13, "EmptySD3LatentImage", 2, 4, {"width": 1024, "height": 1024, "batch_size": 1}),
        N(
            14,
            "SamplerCustomAdvanced",
            4,
            0,
            links={"noise": (7, 0), "guider": (6, 0), "sampler": (11, 0), "sigmas": (12, 0), "latent_image": (13, 0)},
        ),
        N(15, "VAEDecode", 5, 0, links={"samples": (14, 0), "vae": (3, 0)}),
        N(16, "SaveImage", 6, 0, {"filename_prefix": "EvoSearch/flux_dev"}, {"images": (15, 0)}),
        N(17, "EvoSearchResults", 5, 1, links={"run": (11, 1), "latent": (14, 0)}),
        N(18, "PreviewImage", 6, 1, links={"images": (17, 3)}, title="Reward vs NFE"),
        N(19, "PreviewAny", 6, 2, links={"source": (17, 2)}, title="Search report"),
    ]
    flux_note = (
        "## EvoSearch with SamplerCustomAdvanced (FLUX.1-dev)\n\nThe EvoSearch Sampler is a SAMPLER: your guider, "
        "sigmas and noise (its seed) are used as given. The schedule is the paper's FLUX preset (×29 one image at "
        "50 steps, rescaled to 28). Flux needs a stochastic sampler for intermediate generations: euler_ancestral "
        "runs its rectified-flow form. EvoSearch Results reads the final population, report and reward curve."
    )
    wan_prompt = "a red kite flying over green hills on a windy day, smooth camera pan"
    wan = [
        N(
            1,
            "UNETLoader",
            0,
            1,
            {"unet_name": MODELS["wan"]["name"], "weight_dtype": "default"},
            models=[MODELS["wan"]],
        ),
        N(
            2,
            "CLIPLoader",
            0,
            2,
            {"clip_name": MODELS["umt5"]["name"], "type": "wan", "device": "default"},
            models=[MODELS["umt5"]],
        ),
        N(3, "VAELoader", 0, 3, {"vae_name": MODELS["wan_vae"]["name"]}, models=[MODELS["wan_vae"]]),
        N(4, "ModelSamplingSD3", 1, 0, {"shift": 8.0}, {"model": (1, 0)}),
        N(5, "CLIPTextEncode", 1, 1, {"text": wan_prompt}, {"clip": (2, 0)}, title="Positive prompt"),
        N(
            6,
            "CLIPTextEncode",
            1,
            2,
            {"text": NEGATIVE + ", static, frozen frames"},
            {"clip": (2, 0)},
            title="Negative prompt",
        ),
        N(7, "EmptyHunyuanLatentVideo", 1, 3, {"width": 832, "height": 480, "length": 33, "batch_size": 1}),
        _reward(
            8,
            0,
            4,
            "clipscore",
            wan_prompt,
            video_frames=8,
            frame_policy="uniform",
            video_aggregate="mean_minus_std",
            std_weight=0.5,
            source_fps=16.0,
        ),
        _schedule(9, 1, 4, mode="preset_wan", steps=30),
        N(10, "EvoSearchMutation", 1, 5),
        N(
            11,
            "EvoSearchKSampler",
            2,
            0,
            {
                "seed": 42,
                "steps": 30,
                "cfg": 5.0,
                "sampler_name": "euler_ancestral",
                "scheduler": "simple",
                "denoise": 1.0,
                "chunk_size": 0,
            },
            {
                "model": (4, 0),
                "positive": (5, 0),
                "negative": (6, 0),
                "latent_image": (7, 0),
                "vae": (3, 0),
                "reward": (8, 0),
                "schedule": (9, 0),
                "mutation": (10, 0),
            },
        ),
        N(12, "VAEDecode", 3, 0, links={"samples": (11, 0), "vae": (3, 0)}),
        N(13, "CreateVideo", 4, 0, {"fps": 16.0}, {"images": (12, 0)}),
        N(
            14,
            "SaveVideo",
            5,
            0,
            {"filename_prefix": "EvoSearch/wan21_t2v", "format": "auto", "codec": "auto"},
            {"video": (13, 0)},
        ),
        N(15, "PreviewImage", 3, 1, links={"images": (11, 4)}, title="Reward vs NFE"),
        N(16, "PreviewAny", 3, 2, links={"source": (11, 3)}, title="Search report"),
    ]
    wan_note = (
        "## EvoSearch, Wan 2.1 T2V 1.3B\n\nThe paper's Wan preset (×20 one video at 50 steps, rescaled to 30), "
        "shift 8. The reward is CLIPScore over 8 frames (mean − 0.5·std, which also rewards consistent frames); "
        "with a GPU and the VideoAlign files installed, set the reward kind to videoreward as in the paper. Put the "
        "CLIP ViT-L/14 folder in `models/rewards/clipscore/`."
    )
    wan22 = [
        N(
            1,
            "UNETLoader",
            0,
            1,
            {"unet_name": MODELS["wan22_high"]["name"], "weight_dtype": "default"},
            models=[MODELS["wan22_high"]],
            title="High-noise expert",
        ),  # fmt: skip
        N(
            2,
            "UNETLoader",
            0,
            2,
            {"unet_name": MODELS["wan22_low"]["name"], "weight_dtype": "default"},
            models=[MODELS["wan22_low"]],
            title="Low-noise expert",
        ),  # fmt: skip
        N(
            3,
            "CLIPLoader",
            0,
            3,
            {"clip_name": MODELS["umt5"]["name"], "type": "wan", "device": "default"},
            models=[MODELS["umt5"]],
        ),  # fmt: skip
        N(4, "VAELoader", 0, 4, {"vae_name": MODELS["wan_vae"]["name"]}, models=[MODELS["wan_vae"]]),
        N(5, "ModelSamplingSD3", 1, 0, {"shift": 8.0}, {"model": (1, 0)}, title="Shift (high-noise)"),
        N(6, "ModelSamplingSD3", 1, 1, {"shift": 8.0}, {"model": (2, 0)}, title="Shift (low-noise)"),
        N(7, "CLIPTextEncode", 1, 2, {"text": wan_prompt}, {"clip": (3, 0)}, title="Positive prompt"),
        N(
            8,
            "CLIPTextEncode",
            1,
            3,
            {"text": NEGATIVE + ", static, frozen frames"},
            {"clip": (3, 0)},
            title="Negative prompt",
        ),  # fmt: skip
        N(9, "EmptyHunyuanLatentVideo", 1, 4, {"width": 832, "height": 480, "length": 33, "batch_size": 1}),
        _reward(
            10,
            0,
            5,
            "clipscore",
            wan_prompt,
            video_frames=8,
            frame_policy="uniform",
            video_aggregate="mean_minus_std",
            std_weight=0.5,
            source_fps=16.0,
        ),  # fmt: skip
        _schedule(11, 1, 5, mode="preset_wan", steps=20),
        N(12, "EvoSearchMutation", 1, 6),
        N(
            13,
            "EvoSearchKSampler",
            2,
            0,
            {
                "seed": 42,
                "steps": 20,
                "cfg": 3.5,
                "sampler_name": "euler_ancestral",
                "scheduler": "simple",
                "denoise": 1.0,
                "chunk_size": 0,
                "expert_boundary": 0.875,
                "top_k": 0,
            },
            {
                "model": (5, 0),
                "model_low": (6, 0),
                "positive": (7, 0),
                "negative": (8, 0),
                "latent_image": (9, 0),
                "vae": (4, 0),
                "reward": (10, 0),
                "schedule": (11, 0),
                "mutation": (12, 0),
            },
            title="EvoSearch KSampler (both experts, one search)",
        ),
        N(14, "VAEDecode", 3, 0, links={"samples": (13, 0), "vae": (4, 0)}),
        N(15, "CreateVideo", 4, 0, {"fps": 16.0}, {"images": (14, 0)}),
        N(
            16,
            "SaveVideo",
            5,
            0,
            {"filename_prefix": "EvoSearch/wan22_t2v", "format": "auto", "codec": "auto"},
            {"video": (15, 0)},
        ),  # fmt: skip
        N(17, "PreviewImage", 3, 1, links={"images": (13, 4)}, title="Reward vs NFE"),
        N(18, "PreviewAny", 3, 2, links={"source": (13, 3)}, title="Search report"),
    ]
    wan22_note = (
        "## EvoSearch across Wan 2.2 A14B's two experts\n\nWan 2.2 A14B is two models: the high-noise expert runs "
        "while σ ≥ 0.875, the low-noise expert below it (core workflows chain two KSamplerAdvanced nodes). Here one "
        "EvoSearch KSampler runs both in a single search: connect the low-noise model to **model_low**; "
        "**expert_boundary** is the switch (0.875 for text-to-video, 0.9 for image-to-video). Every trajectory, "
        "child and mutation spans both experts; the report counts model evaluations per expert (nfe_per_model). "
        "The schedule is the paper's Wan preset rescaled to 20 steps. For separate prompts or CFG per expert, use "
        "EvoSearch Two-Expert Guider with SamplerCustomAdvanced and the EvoSearch Sampler."
    )
    demo = [
        N(1, "EvoSearchDemoModel", 0, 1, {"batch_size": 1, "target_digit": 3, "reward_kind": "digit_bold"}),
        _schedule(2, 0, 2, budget=30.0, steps=20),
        N(3, "EvoSearchMutation", 0, 3),
        N(
            4,
            "EvoSearchKSampler",
            1,
            0,
            {
                "seed": 7,
                "steps": 20,
                "cfg": 1.0,
                "sampler_name": "dpmpp_2m_sde",
                "scheduler": "karras",
                "denoise": 1.0,
                "chunk_size": 0,
            },
            {
                "model": (1, 0),
                "positive": (1, 2),
                "negative": (1, 3),
                "latent_image": (1, 4),
                "vae": (1, 1),
                "reward": (1, 5),
                "schedule": (2, 0),
                "mutation": (3, 0),
            },
        ),
        N(5, "VAEDecode", 2, 0, links={"samples": (4, 0), "vae": (1, 1)}, title="Decode best"),
        N(14, "ImageScaleBy", 3, 0, _ENLARGE, {"image": (5, 0)}, title="Enlarge ×8 (32 px images)"),
        N(6, "PreviewImage", 4, 0, links={"images": (14, 0)}, title="EvoSearch: best sample"),
        N(7, "VAEDecode", 2, 1, links={"samples": (4, 1), "vae": (1, 1)}, title="Decode final population"),
        N(15, "ImageScaleBy", 3, 1, _ENLARGE, {"image": (7, 0)}, title="Enlarge ×8"),
        N(8, "PreviewImage", 4, 1, links={"images": (15, 0)}, title="Final population, best first"),
        N(9, "PreviewImage", 2, 3, links={"images": (4, 4)}, title="Reward vs NFE"),
        N(10, "PreviewAny", 2, 4, links={"source": (4, 3)}, title="Search report"),
        N(
            11,
            "KSampler",
            1,
            1,
            {"seed": 7, "steps": 20, "cfg": 1.0, "sampler_name": "dpmpp_2m_sde", "scheduler": "karras", "denoise": 1.0},
            {"model": (1, 0), "positive": (1, 2), "negative": (1, 3), "latent_image": (1, 4)},
            title="Plain KSampler, same seed (no search)",
        ),
        N(12, "VAEDecode", 2, 2, links={"samples": (11, 0), "vae": (1, 1)}, title="Decode plain sample"),
        N(16, "ImageScaleBy", 3, 2, _ENLARGE, {"image": (12, 0)}, title="Enlarge ×8"),
        N(13, "PreviewImage", 4, 2, links={"images": (16, 0)}, title="Plain sampler: same seed, no search"),
    ]
    demo_note = (
        "## EvoSearch demo: no downloads, runs on a CPU in seconds\n\nThe EvoSearch Demo Model node loads a tiny "
        "SD1.5-architecture UNet, a VAE and a digit-classifier reward, all trained in this pack on handwritten "
        "digits (32×32 images). The model draws random digits; the reward asks for a **bold 3** (a confident 3 whose "
        "stroke thickness is in the top decile), which the plain sampler draws about once in 160 tries. The "
        "EvoSearch KSampler spends ×30 one image's compute evolving the initial noises and the intermediate latents "
        "towards it with the default strategy (fitness auto: x0 predictions scored with selection pressure rising "
        "with the step; fitness rollout is the paper's). Compare with the plain KSampler below on the same seed. Change target_digit and reward_kind "
        "(digit / digit_bold / digit_thin), or set the schedule's strategy to best_of_n or particles to compare at "
        "the same compute (bench/demo_proof.py measures all three over many seeds)."
    )
    shapes_prompt = "three red circles"
    shapes = [
        N(1, "EvoSearchShapesModel", 0, 1, {"batch_size": 1}),
        N(2, "CLIPTextEncode", 1, 0, {"text": shapes_prompt}, {"clip": (1, 1)}, title="Prompt"),
        N(3, "CLIPTextEncode", 1, 1, {"text": ""}, {"clip": (1, 1)}, title="Negative (empty)"),
        N(
            4,
            "EvoSearchLoadReward",
            0,
            2,
            {"kind": "shapes", "model": "auto", "dtype": "auto", "prompt": shapes_prompt},
            title="Verifier reward (same prompt)",
        ),  # fmt: skip
        _schedule(5, 0, 3, budget=10.0, steps=20),
        N(6, "EvoSearchMutation", 0, 4),
        N(
            7,
            "EvoSearchKSampler",
            2,
            0,
            {
                "seed": 7,
                "steps": 20,
                "cfg": 4.0,
                "sampler_name": "dpmpp_2m_sde",
                "scheduler": "karras",
                "denoise": 1.0,
                "chunk_size": 0,
                "top_k": 4,
            },
            {
                "model": (1, 0),
                "positive": (2, 0),
                "negative": (3, 0),
                "latent_image": (1, 3),
                "vae": (1, 2),
                "reward": (4, 0),
                "schedule": (5, 0),
                "mutation": (6, 0),
            },
        ),
        N(8, "VAEDecode", 3, 0, links={"samples": (7, 0), "vae": (1, 2)}, title="Decode best"),
        N(9, "ImageScaleBy", 4, 0, _ENLARGE, {"image": (8, 0)}, title="Enlarge ×8 (32 px images)"),
        N(10, "PreviewImage", 5, 0, links={"images": (9, 0)}, title="EvoSearch: best image"),
        N(11, "VAEDecode", 3, 1, links={"samples": (7, 1), "vae": (1, 2)}, title="Decode the 4 options"),
        N(12, "ImageScaleBy", 4, 1, _ENLARGE, {"image": (11, 0)}, title="Enlarge ×8"),
        N(13, "PreviewImage", 5, 1, links={"images": (12, 0)}, title="4 distinct options, best first"),
        N(14, "PreviewImage", 3, 3, links={"images": (7, 4)}, title="Reward vs NFE"),
        N(15, "PreviewAny", 3, 4, links={"source": (7, 3)}, title="Search report"),
        N(
            16,
            "KSampler",
            2,
            1,
            {"seed": 7, "steps": 20, "cfg": 4.0, "sampler_name": "dpmpp_2m_sde", "scheduler": "karras", "denoise": 1.0},
            {"model": (1, 0), "positive": (2, 0), "negative": (3, 0), "latent_image": (1, 3)},
            title="Plain KSampler, same seed (no search)",
        ),
        N(17, "VAEDecode", 3, 2, links={"samples": (16, 0), "vae": (1, 2)}, title="Decode plain image"),
        N(18, "ImageScaleBy", 4, 2, _ENLARGE, {"image": (17, 0)}, title="Enlarge ×8"),
        N(19, "PreviewImage", 5, 2, links={"images": (18, 0)}, title="Plain sampler: same seed, no search"),
    ]
    shapes_note = (
        "## EvoSearch demo: text-to-image, no downloads, runs on a CPU\n\nThe EvoSearch Shapes Model node loads a "
        "tiny text-to-image model trained in this pack on procedurally drawn scenes of circles, squares and "
        "triangles in four colours (32×32 images). Type a prompt in **both** the Prompt node and the verifier "
        "reward (the reward checks the decoded image against it, as GenEval does: counts, colours, positions). "
        'Like real text-to-image models it gets single objects mostly right and compositions ("three red '
        'circles", "a red square above a green triangle") often wrong; the EvoSearch KSampler spends ×10 one '
        "image's compute evolving noises and latents towards an image the verifier accepts, and returns 4 "
        'distinct options. Compare with the plain KSampler on the same seed. Try "a yellow circle left of a blue '
        'square" or "two green triangles"; set the schedule\'s strategy to best_of_n or particles to compare at '
        "the same compute (bench/shapes_bench.py measures every method on 43 prompts)."
    )
    return {
        "evosearch_demo_shapes": {"nodes": shapes, "note": Note(0, 0, shapes_note)},
        "evosearch_sd15_txt2img": _checkpoint_t2i("sd15", "sd15", 512, fox, 25, 7.5, sd15_note),
        "evosearch_sdxl_txt2img": _checkpoint_t2i("sdxl", "sdxl", 1024, fox, 30, 6.0, sdxl_note),
        "evosearch_flux_dev_txt2img": {"nodes": flux, "note": Note(0, 0, flux_note)},
        "evosearch_wan21_t2v_1.3b": {"nodes": wan, "note": Note(0, 0, wan_note)},
        "evosearch_wan22_t2v_a14b": {"nodes": wan22, "note": Note(0, 0, wan22_note)},
        "evosearch_demo_digits": {"nodes": demo, "note": Note(0, 0, demo_note)},
    }


def _is_widget(spec: tuple | list) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES or kind == "COMBO"


def node_info(class_type: str) -> dict:
    """The object_info entry the frontend reads for ``class_type``."""
    from comfy_api.internal import _ComfyNodeInternal

    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS[class_type]
    if issubclass(cls, _ComfyNodeInternal):
        return cls.GET_NODE_INFO_V1()
    types = cls.INPUT_TYPES()
    return {"input": types, "input_order": {k: list(v) for k, v in types.items()}, "output": list(cls.RETURN_TYPES),
            "output_name": list(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES))}  # fmt: skip


def workflow_id(name: str) -> str:
    """The workflow's top-level ``id``: a UUID (the frontend's schema wants one), the same on every regeneration."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://github.com/evosearch/ComfyUI-EvoSearch/workflows/{name}"))


def _title(n: N, info: dict) -> str:
    import nodes

    return n.title or info.get("display_name") or nodes.NODE_DISPLAY_NAME_MAPPINGS.get(n.type) or n.type


def _widgets(n: N, info: dict) -> list[Widget]:
    """The widgets the frontend gives node ``n``, with their heights (widget inputs, extras the frontend adds)."""
    out: list[Widget] = []
    for section in ("required", "optional"):
        for name in info["input_order"].get(section, []):
            spec_ = info["input"][section][name]
            if not _is_widget(spec_):
                continue
            options = spec_[1] if len(spec_) > 1 and isinstance(spec_[1], dict) else {}
            if spec_[0] == "STRING" and options.get("multiline"):
                out.append(Widget(name, DOM_HEIGHTS.get((n.type, name), DOM_MIN_HEIGHT)))
            else:
                out.append(Widget(name))
            if options.get("control_after_generate"):
                out.append(Widget("control_after_generate", has_input=False))
    if n.type == "PreviewAny":  # its text box (the frontend's Comfy.PreviewAny extension)
        out.append(Widget("preview", DOM_HEIGHTS.get((n.type, "preview"), DOM_MIN_HEIGHT), has_input=False))
    if n.type in RESULT_PREVIEWS:  # room for the image/video a run shows, so the node need not grow then
        out.append(Widget("$$preview", IMAGE_PREVIEW_HEIGHT, has_input=False))
    if n.type in INFO_HEIGHTS:  # the cost / run summary box of web/js/evosearch.js
        out.append(Widget("evosearch_info", INFO_HEIGHTS[n.type], has_input=False))
    return out


def _note_height(text: str, width: int) -> int:
    """Body height that shows a MarkdownNote's text without scrolling (the frontend sets notes in ~10 px type with
    ~11.5 px lines and ~15 px bold headings; measured in frontend 1.27)."""
    usable = width - 2 * 10 - 16  # DOM widget margin, markdown padding
    height = 0.0
    for paragraph in (p.strip() for p in text.split("\n\n")):
        if paragraph.startswith("#"):
            height += 17 * -(-text_width(paragraph.lstrip("# "), 16) // usable) + 6
        elif paragraph:
            height += 11.5 * -(-text_width(paragraph, 10.5) // usable) + 10
    return int(height + 2 * 10 + 16 + SLOT_HEIGHT + WIDGETS_PADDING + NODE_PADDING)


def opening_view(boxes: list[Box]) -> dict:
    """The saved view (``extra.ds``): the graph's top-left corner at the window's, zoomed to fit a 1920×1080 window
    but not below the zoom where the canvas still draws text and widgets (LiteGraph's low-quality threshold is 0.6;
    the frontend's own fit-to-view zooms to 75% of the fit, which leaves these graphs as blank boxes)."""
    x0 = min(b.pos[0] for b in boxes)
    y0 = min(b.pos[1] - TITLE_HEIGHT for b in boxes)
    x1 = max(b.pos[0] + b.size[0] for b in boxes)
    y1 = max(b.pos[1] + b.size[1] for b in boxes)
    margin = 20
    scale = min(VIEW[0] / (x1 - x0 + 2 * margin), VIEW[1] / (y1 - y0 + 2 * margin), 1.0)
    scale = round(max(scale, MIN_READABLE_SCALE), 3)
    return {"scale": scale, "offset": [margin - x0, margin - y0]}


def build(name: str, spec: dict) -> tuple[dict, dict]:
    """(UI workflow, API graph) for one workflow spec."""
    nodes_out, links_out, api = [], [], {}
    infos = {n.id: node_info(n.type) for n in spec["nodes"]}
    sockets: dict[int, list[tuple[str, str]]] = {}
    for n in spec["nodes"]:
        info = infos[n.id]
        sockets[n.id] = []
        for section in ("required", "optional"):
            for input_name in info["input_order"].get(section, []):
                spec_ = info["input"][section][input_name]
                if not _is_widget(spec_):
                    sockets[n.id].append((input_name, spec_[0]))
    link_id = 0
    incoming: dict[int, dict[str, int]] = {n.id: {} for n in spec["nodes"]}
    outgoing: dict[tuple[int, int], list[int]] = {}
    columns = {n.id: n.col for n in spec["nodes"]}
    for n in spec["nodes"]:
        for input_name, (src, slot) in n.links.items():
            assert columns[src] < n.col, f"{name}: link {src}→{n.id} ({input_name}) does not run left to right"
            link_id += 1
            kind = infos[src]["output"][slot]
            to_slot = [s for s, _ in sockets[n.id]].index(input_name)
            links_out.append([link_id, src, slot, n.id, to_slot, kind])
            incoming[n.id][input_name] = link_id
            outgoing.setdefault((src, slot), []).append(link_id)
    note = spec["note"]
    note_id = max(n.id for n in spec["nodes"]) + 1
    boxes = [Box(note_id, note.col, note.row, (NOTE_WIDTH, _note_height(note.text, NOTE_WIDTH)))]
    for n in spec["nodes"]:
        info = infos[n.id]
        outputs = [out_name for out_name in info["output_name"]]
        size = node_size(_title(n, info), [s for s, _ in sockets[n.id]], outputs, _widgets(n, info),
                         (WIDTHS.get(n.type, DEFAULT_WIDTH), 0))  # fmt: skip
        boxes.append(Box(n.id, n.col, n.row, size))
    placed = {b.id: b for b in layout(boxes)}
    assert not overlaps(list(placed.values())), f"{name}: overlapping nodes {overlaps(list(placed.values()))}"
    for order, n in enumerate(spec["nodes"]):
        info = infos[n.id]
        values, api_inputs = [], {}
        for section in ("required", "optional"):
            for input_name in info["input_order"].get(section, []):
                spec_ = info["input"][section][input_name]
                if not _is_widget(spec_):
                    continue
                options = spec_[1] if len(spec_) > 1 and isinstance(spec_[1], dict) else {}
                if input_name in n.widgets:
                    value = n.widgets[input_name]
                elif "default" in options:
                    value = options["default"]
                elif isinstance(spec_[0], list) and spec_[0]:
                    value = spec_[0][0]
                else:
                    raise ValueError(f"{n.type}.{input_name} needs a value: no default")
                values.append(value)
                if options.get("control_after_generate"):
                    values.append("fixed")
                api_inputs[input_name] = value
        unknown = set(n.widgets) - set(api_inputs)
        assert not unknown, f"{n.type}: unknown widgets {unknown}"
        for input_name, (src, slot) in n.links.items():
            api_inputs[input_name] = [str(src), slot]
        properties = {"Node name for S&R": n.type}
        if n.models:
            properties["models"] = n.models
        box = placed[n.id]
        node = {
            "id": n.id, "type": n.type, "pos": list(box.pos), "size": list(box.size),
            "flags": {}, "order": order, "mode": 0,
            "inputs": [{"name": s, "type": kind, "link": incoming[n.id].get(s)} for s, kind in sockets[n.id]],
            "outputs": [
                {"name": out_name, "type": kind, "links": outgoing.get((n.id, slot), []), "slot_index": slot}
                for slot, (kind, out_name) in enumerate(zip(info["output"], info["output_name"]))
            ],
            "properties": properties, "widgets_values": values,
        }  # fmt: skip
        if n.title:
            node["title"] = n.title
        nodes_out.append(node)
        api[str(n.id)] = {"class_type": n.type, "inputs": api_inputs}
    box = placed[note_id]
    nodes_out.append({"id": note_id, "type": "MarkdownNote", "pos": list(box.pos), "size": list(box.size),
                      "flags": {}, "order": len(nodes_out), "mode": 0, "inputs": [], "outputs": [],
                      "properties": {}, "widgets_values": [note.text], "title": "About this workflow"})  # fmt: skip
    ui = {"id": workflow_id(name), "revision": 0, "last_node_id": note_id, "last_link_id": link_id,
          "nodes": nodes_out, "links": links_out, "groups": [], "config": {},
          "extra": {"ds": opening_view(list(placed.values()))}, "version": 0.4}  # fmt: skip
    return ui, api


def main() -> int:
    from support.comfy import boot
    from support.workflows import InProcessComfy

    pack = boot()
    import importlib
    import tempfile

    runtime = importlib.import_module(f"{pack.__name__}.nodes.reward_runtime")
    for kind in ("imagereward", "clipscore"):
        official = runtime.official_choice(kind)
        assert MODELS[kind]["name"] == official, f"MODELS[{kind!r}] must name the official file {official!r}"

    with tempfile.TemporaryDirectory() as tmp:
        InProcessComfy(Path(tmp))  # registers core extras and this pack as custom nodes
    out_ui = REPO / "workflows"
    out_api = REPO / "tests" / "workflows" / "api"
    out_ui.mkdir(exist_ok=True)
    out_api.mkdir(parents=True, exist_ok=True)
    for name, spec in workflows().items():
        ui, api = build(name, spec)
        (out_ui / f"{name}.json").write_text(json.dumps(ui, indent=1, ensure_ascii=False) + "\n")
        (out_api / f"{name}.json").write_text(json.dumps(api, indent=1, ensure_ascii=False) + "\n")
        log.info("wrote workflows/%s.json and tests/workflows/api/%s.json", name, name)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raise SystemExit(main())
