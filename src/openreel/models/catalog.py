"""ModelCard: everything openreel knows about one model, as data.

Frame rules, native sizes, fps, lengths, memory needs and default settings live on the card and
nowhere else; the Planner reads them, the family module knows how to call the pipeline. Real
cards name the published Hugging Face repositories (diffusers layout); tiny cards build random
weights in code so everything runs offline (their output is noise).
"""

from __future__ import annotations

from dataclasses import replace

from openreel.errors import UnknownModelError
from openreel.models.card import ModelCard
from openreel.models.pyramid_flow.cards import CARDS as PYRAMID_FLOW_CARDS
from openreel.models.reference import param_counts, transformer_shape

# What each family's cards can do with the weights they name (see the family modules for how):
# i2v and forward extension by conditioning the first frames (LTX-Video natively, the others by
# latent anchoring); remix through a video-to-video pipeline on the same weights; backward
# extension, loops and storyboard images after the start ("keyframes") need conditioning at any
# frame, which only LTX-Video's pipeline offers; blend re-renders a curve-weighted mix of two
# clips, so it needs remix; storyboards need windows (every family but Pyramid Flow).
_MODES = {
    "cogvideox": frozenset({"t2v", "i2v", "remix", "extend", "blend", "storyboard", "still"}),
    # CogVideoX 1.5 patches latent frames in pairs: its text-to-video pipeline pads an odd count,
    # its video-to-video pipeline refuses one, and 16k+1 frames always make an odd count. So no
    # remix, blend or video-to-video refinement on 1.5 (its twin found it).
    "cogvideox1.5": frozenset({"t2v", "i2v", "extend", "storyboard", "still"}),
    "mochi": frozenset({"t2v", "i2v", "extend", "storyboard", "still"}),
    "ltx": frozenset(
        {
            "t2v",
            "i2v",
            "remix",
            "extend",
            "extend_backward",
            "loop",
            "blend",
            "storyboard",
            "keyframes",
            "still",
        }
    ),
    "wan": frozenset({"t2v", "i2v", "remix", "extend", "blend", "storyboard", "still"}),
    # WanVideoToVideoPipeline sizes its latents for the 8x VAE of Wan 2.1, not Wan 2.2's 16x one
    # (patchified): no remix, blend or video-to-video refinement on TI2V-5B (its twin found it).
    "wan2.2": frozenset({"t2v", "i2v", "extend", "storyboard", "still"}),
    "hunyuan": frozenset({"t2v", "i2v", "extend", "storyboard", "still"}),
    # Dedicated image-to-video checkpoints run their families' own I2V pipelines, which need an
    # image (no t2v) and pin its frame first. Wan 2.1 I2V's image embedding has positions for one
    # image only: a last frame (first-last-frame, hence loops) needs the FLF2V checkpoint.
    "wan-i2v": frozenset({"i2v"}),
    # FLF2V needs both images: it makes loops (the kept part's tail -> the clip's first frame).
    "wan-flf2v": frozenset({"loop"}),
    "cogvideox-i2v": frozenset({"i2v"}),
    # VACE takes a full-length control video with a mask (0: keep this pixel, 1: generate it), so
    # a first frame (i2v) or a clip's tail (extend) is given in pixels; "references" is its
    # reference_images input (characters: look like these, placed anywhere).
    "wan-vace": frozenset({"t2v", "i2v", "extend", "references"}),
    "hunyuan-i2v": frozenset({"i2v"}),
    # LTX-2 makes video and sound in one pass (LTX2Pipeline); conditioned at any frame through
    # LTX2ConditionPipeline (image-to-video, extension both ways, loops, keyframes), as LTX-Video.
    # No remix or blend: diffusers 0.42 has no LTX-2 video-to-video pipeline.
    "ltx2": frozenset(
        {"t2v", "i2v", "extend", "extend_backward", "loop", "storyboard", "keyframes", "still"}
    ),
    # Wan 2.2 A14B: two experts in WanPipeline / WanImageToVideoPipeline. WanVideoToVideoPipeline
    # has no transformer_2 (it would denoise with the high-noise expert alone): no remix, blend or
    # video-to-video refinement. The text-to-video card holds an image by latent anchoring.
    "wan2.2-a14b": frozenset({"t2v", "i2v", "extend", "storyboard", "still"}),
    # SkyReels-V2 diffusion forcing: long text-to-video clips in one call; an image or a clip's
    # tail held by latent anchoring on one pass (no video-to-video pipeline on these weights).
    "skyreels-df": frozenset({"t2v", "i2v", "extend", "storyboard"}),
    # HunyuanVideo 1.5's pipelines take no step callback, so nothing can be anchored: text-to-video
    # in one call, and image-to-video through the I2V checkpoint's own pipeline.
    "hunyuan15": frozenset({"t2v"}),
}

FAMILIES = ("cogvideox", "mochi", "ltx", "ltx2", "wan", "hunyuan", "pyramid-flow", "skyreels", "hunyuan15")


# LTX-Video's spatial latent upsampler (diffusers layout), shared by the 0.9.5+ VAE latents.
_LTXV_UPSAMPLER = "Lightricks/ltxv-spatial-upscaler-0.9.7"
_WAN_LICENCE = ("Apache-2.0", "https://www.apache.org/licenses/LICENSE-2.0")
# Wan's VAE and CLIP image encoder run in float32 beside a bf16 transformer, as its model cards
# load them (reduced precision costs detail); the loader and the memory figures both read this.
_WAN_FLOAT32 = ("vae", "image_encoder")
_LTXV_LICENCE = (
    "LTX-Video Open Weights License",
    "https://huggingface.co/Lightricks/LTX-Video/blob/main/LICENSE",
)

CARDS: tuple[ModelCard, ...] = (
    # --- CogVideoX (THUDM / Zhipu AI) ---
    ModelCard(
        id="cogvideox-2b",
        family="cogvideox",
        title="CogVideoX 2B",
        source="hub:THUDM/CogVideoX-2b",
        licence="Apache-2.0",
        licence_url="https://huggingface.co/THUDM/CogVideoX-2b/blob/main/LICENSE",
        authors=("THUDM", "Zhipu AI"),
        modes=_MODES["cogvideox"],
        native_width=720,
        native_height=480,
        fps=8,
        frame_step=8,
        max_frames=49,
        size_multiple=16,
        default_steps=50,
        default_guidance=6.0,
        memory_gib=18.0,
        quality=1,
        description="Small, quick CogVideoX; 6 s at 8 fps, 720x480.",
        upscaler="v2v",
        params_b=1.7,
        dit_width=1920,
        dit_depth=30,
    ),
    ModelCard(
        id="cogvideox-5b",
        family="cogvideox",
        title="CogVideoX 5B",
        source="hub:THUDM/CogVideoX-5b",
        licence="CogVideoX License",
        licence_url="https://huggingface.co/THUDM/CogVideoX-5b/blob/main/LICENSE",
        authors=("THUDM", "Zhipu AI"),
        modes=_MODES["cogvideox"],
        native_width=720,
        native_height=480,
        fps=8,
        frame_step=8,
        max_frames=49,
        size_multiple=16,
        default_steps=50,
        default_guidance=6.0,
        memory_gib=26.0,
        quality=2,
        options={"dynamic_cfg": True, "scheduler": "CogVideoXDPMScheduler"},
        description="CogVideoX 5B; 6 s at 8 fps, 720x480.",
        upscaler="v2v",
        params_b=5.6,
        dit_width=3072,
        dit_depth=42,
    ),
    ModelCard(
        id="cogvideox1.5-5b",
        family="cogvideox",
        title="CogVideoX 1.5 5B",
        source="hub:THUDM/CogVideoX1.5-5B",
        licence="CogVideoX License",
        licence_url="https://huggingface.co/THUDM/CogVideoX1.5-5B/blob/main/LICENSE",
        authors=("THUDM", "Zhipu AI"),
        modes=_MODES["cogvideox1.5"],
        native_width=1360,
        native_height=768,
        fps=16,
        frame_step=16,
        max_frames=161,
        size_multiple=16,
        default_steps=50,
        default_guidance=6.0,
        memory_gib=34.0,
        quality=4,
        options={"dynamic_cfg": True, "scheduler": "CogVideoXDPMScheduler"},
        description="CogVideoX 1.5; up to 10 s at 16 fps, 1360x768.",
        upscaler=None,
        params_b=5.6,
        dit_width=3072,
        dit_depth=42,
    ),
    ModelCard(
        id="cogvideox-5b-i2v",
        family="cogvideox",
        title="CogVideoX 5B I2V",
        source="hub:THUDM/CogVideoX-5b-I2V",
        licence="CogVideoX License",
        licence_url="https://huggingface.co/THUDM/CogVideoX-5b-I2V/blob/main/LICENSE",
        authors=("THUDM", "Zhipu AI"),
        modes=_MODES["cogvideox-i2v"],
        native_width=720,
        native_height=480,
        fps=8,
        frame_step=8,
        max_frames=49,
        size_multiple=16,
        default_steps=50,
        default_guidance=6.0,
        memory_gib=26.0,
        quality=2,
        options={
            "dynamic_cfg": True,
            "scheduler": "CogVideoXDPMScheduler",
            "pipeline": "CogVideoXImageToVideoPipeline",
            "conditioning": "image",
            # Learned position embeddings for 720x480 only: the pipeline refuses other sizes,
            # so it always generates at the native size and post-processing fits the output.
            "fixed_size": True,
        },
        description="CogVideoX 5B image-to-video; 6 s at 8 fps, 720x480.",
        # Its transformer takes the image latents as extra channels: no video-to-video reuse.
        upscaler=None,
        params_b=5.6,
        dit_width=3072,
        dit_depth=42,
    ),
    # --- Mochi 1 (Genmo) ---
    ModelCard(
        id="mochi-1",
        family="mochi",
        title="Mochi 1 preview",
        source="hub:genmo/mochi-1-preview",
        licence="Apache-2.0",
        licence_url="https://huggingface.co/genmo/mochi-1-preview/blob/main/LICENSE",
        authors=("Genmo",),
        modes=_MODES["mochi"],
        native_width=848,
        native_height=480,
        fps=30,
        frame_step=6,
        max_frames=163,
        size_multiple=16,
        default_steps=64,
        default_guidance=4.5,
        memory_gib=42.0,
        quality=4,
        description="Mochi 1 (10B); 5.4 s at 30 fps, 848x480, strong motion.",
        min_steps=2,
        upscaler=None,
        params_b=10.0,
        dit_width=3072,
        dit_depth=48,
    ),
    # --- LTX-Video (Lightricks) ---
    # Cards name the repositories published in diffusers layout (0.9.5 for 2B, 0.9.7 for 13B);
    # 0.9.8's 2B distilled weights exist only as a single checkpoint file.
    ModelCard(
        id="ltx-video-2b",
        family="ltx",
        title="LTX-Video 0.9.5 2B",
        source="hub:Lightricks/LTX-Video-0.9.5",
        licence=_LTXV_LICENCE[0],
        licence_url=_LTXV_LICENCE[1],
        authors=("Lightricks",),
        modes=_MODES["ltx"],
        native_width=768,
        native_height=512,
        fps=24,
        frame_step=8,
        max_frames=257,
        size_multiple=32,
        default_steps=40,
        default_guidance=3.0,
        memory_gib=10.0,
        quality=2,
        options={"decode_timestep": 0.05, "decode_noise_scale": 0.025, "latent_upsampler": _LTXV_UPSAMPLER},
        description="Fast, small LTX-Video; up to 10 s at 24 fps, 768x512.",
        upscaler="latent",
        params_b=1.9,
        dit_width=2048,
        dit_depth=28,
        max_total_seconds=60.0,
    ),
    ModelCard(
        id="ltx-video-13b-distilled",
        family="ltx",
        title="LTX-Video 0.9.7 13B distilled",
        source="hub:Lightricks/LTX-Video-0.9.7-distilled",
        licence=_LTXV_LICENCE[0],
        licence_url=_LTXV_LICENCE[1],
        authors=("Lightricks",),
        modes=_MODES["ltx"],
        native_width=768,
        native_height=512,
        fps=24,
        frame_step=8,
        max_frames=257,
        size_multiple=32,
        default_steps=8,
        default_guidance=1.0,
        memory_gib=32.0,
        quality=3,
        options={
            "decode_timestep": 0.05,
            "decode_noise_scale": 0.025,
            "latent_upsampler": _LTXV_UPSAMPLER,
            # The schedule the distilled model was trained on, for 8 steps, and its refinement pass
            # after the latent upsampler (AdaIN-matched to the first pass), as diffusers' docs run
            # 0.9.7 distilled: nearly the whole short schedule, no image-condition noise.
            "timesteps": [1000, 993, 987, 981, 975, 909, 725, 0.03],
            "refine_timesteps": [1000, 909, 725, 421, 0],
            "refine_strength": 0.999,
            "adain_factor": 1.0,
            "image_cond_noise_scale": 0.0,
        },
        description="The 13B model distilled to 8 steps without CFG: near-13B quality, fast.",
        upscaler="latent",
        params_b=13.0,
        dit_width=4096,
        dit_depth=48,
        max_total_seconds=60.0,
    ),
    ModelCard(
        id="ltx-video-13b",
        family="ltx",
        title="LTX-Video 0.9.7 13B dev",
        source="hub:Lightricks/LTX-Video-0.9.7-dev",
        licence=_LTXV_LICENCE[0],
        licence_url=_LTXV_LICENCE[1],
        authors=("Lightricks",),
        modes=_MODES["ltx"],
        native_width=768,
        native_height=512,
        fps=24,
        frame_step=8,
        max_frames=257,
        size_multiple=32,
        default_steps=30,
        default_guidance=5.0,
        memory_gib=32.0,
        quality=4,
        options={
            "decode_timestep": 0.05,
            "decode_noise_scale": 0.025,
            "guidance_rescale": 0.7,
            "latent_upsampler": _LTXV_UPSAMPLER,
            # --quality draft runs the distilled 13B when it is downloaded (models/turbo.py).
            "draft_model": "ltx-video-13b-distilled",
        },
        description="LTX-Video 13B; up to 10 s at 24 fps, 768x512.",
        upscaler="latent",
        params_b=13.0,
        dit_width=4096,
        dit_depth=48,
        max_total_seconds=60.0,
    ),
    # --- LTX-2 (Lightricks): video with synchronised sound ---
    # Lightricks/LTX-2 in diffusers layout (scripts/convert_ltx2_to_diffusers.py --full_pipeline),
    # the 19B dev model run as diffusers' docs run its first stage: 30 steps, CFG 3.0 at 768x512
    # and 24 fps. Its Gemma 3 12B text encoder is gated (Google's Gemma terms).
    ModelCard(
        id="ltx-2",
        family="ltx2",
        title="LTX-2 19B (video with sound)",
        source="hub:Lightricks/LTX-2",
        # Free for commercial use below US$10M annual revenue; above it, a commercial licence
        # from Lightricks. Not an OSI licence.
        licence=(
            "LTX-2 Community License (commercial use above US$10M annual revenue needs a "
            "licence from Lightricks)"
        ),
        licence_url="https://huggingface.co/Lightricks/LTX-2/blob/main/LICENSE",
        authors=("Lightricks",),
        modes=_MODES["ltx2"],
        native_width=768,
        native_height=512,
        fps=24,
        frame_step=8,
        max_frames=257,
        size_multiple=32,
        default_steps=30,
        default_guidance=3.0,
        # Its scheduler stretches the sigmas to shift_terminal 0.1: one step divides by zero.
        min_steps=2,
        memory_gib=80.0,
        quality=6,
        options={
            # Makes a sound track with the frames (render/audio.py carries it to the MP4).
            "audio": True,
            "gated": (
                "LTX-2's text encoder is Google's Gemma 3 12B, gated on the hub: accept the Gemma "
                "Terms of Use at https://huggingface.co/google/gemma-3-12b-it and log in "
                "(`hf auth login`) before downloading."
            ),
        },
        description="Joint audio-video model: up to 10 s at 24 fps, 768x512, with synchronised sound.",
        upscaler=None,
        params_b=19.0,
        dit_width=4096,
        dit_depth=48,
        max_total_seconds=10.0,
    ),
    # --- Wan (Alibaba Wan team) ---
    ModelCard(
        id="wan2.1-t2v-1.3b",
        family="wan",
        title="Wan 2.1 T2V 1.3B",
        source="hub:Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        licence=_WAN_LICENCE[0],
        licence_url=_WAN_LICENCE[1],
        authors=("Wan Team, Alibaba",),
        modes=_MODES["wan"],
        native_width=832,
        native_height=480,
        fps=16,
        frame_step=4,
        max_frames=81,
        size_multiple=16,
        default_steps=50,
        default_guidance=5.0,
        memory_gib=9.0,
        quality=2,
        options={"flow_shift": 3.0, "float32_components": _WAN_FLOAT32},
        description="Small Wan; 5 s at 16 fps, 832x480; runs on consumer GPUs.",
        upscaler="v2v",
        params_b=1.3,
        dit_width=1536,
        dit_depth=30,
    ),
    ModelCard(
        id="wan2.1-t2v-14b",
        family="wan",
        title="Wan 2.1 T2V 14B",
        source="hub:Wan-AI/Wan2.1-T2V-14B-Diffusers",
        licence=_WAN_LICENCE[0],
        licence_url=_WAN_LICENCE[1],
        authors=("Wan Team, Alibaba",),
        modes=_MODES["wan"],
        native_width=1280,
        native_height=720,
        fps=16,
        frame_step=4,
        max_frames=81,
        size_multiple=16,
        default_steps=50,
        default_guidance=5.0,
        memory_gib=48.0,
        quality=5,
        options={
            "flow_shift": 5.0,
            "float32_components": _WAN_FLOAT32,
            # --quality draft: lightx2v's step- and CFG-distilled LoRA (4 steps, guidance 1), the
            # one diffusers' Wan docs point to, when it is in the Hugging Face cache (models/turbo.py).
            "draft_lora": {
                "source": "Kijai/WanVideo_comfy/Lightx2v/"
                "lightx2v_T2V_14B_cfg_step_distill_v2_lora_rank64_bf16.safetensors",
                "steps": 4,
                "guidance": 1.0,
            },
        },
        description="Large Wan; 5 s at 16 fps, 1280x720.",
        upscaler="v2v",
        params_b=14.0,
        dit_width=5120,
        dit_depth=40,
    ),
    ModelCard(
        id="wan2.2-ti2v-5b",
        family="wan",
        title="Wan 2.2 TI2V 5B",
        source="hub:Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        licence=_WAN_LICENCE[0],
        licence_url=_WAN_LICENCE[1],
        authors=("Wan Team, Alibaba",),
        modes=_MODES["wan2.2"],
        native_width=1280,
        native_height=704,
        fps=24,
        frame_step=4,
        max_frames=121,
        size_multiple=32,
        default_steps=50,
        default_guidance=5.0,
        memory_gib=24.0,
        quality=4,
        options={"flow_shift": 5.0, "float32_components": _WAN_FLOAT32},
        description="Wan 2.2 5B with the high-compression VAE; 5 s at 24 fps, 1280x704.",
        upscaler=None,
        params_b=5.0,
        dit_width=3072,
        dit_depth=30,
    ),
    ModelCard(
        id="wan2.1-i2v-14b-480p",
        family="wan",
        title="Wan 2.1 I2V 14B 480P",
        source="hub:Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
        licence=_WAN_LICENCE[0],
        licence_url=_WAN_LICENCE[1],
        authors=("Wan Team, Alibaba",),
        modes=_MODES["wan-i2v"],
        native_width=832,
        native_height=480,
        fps=16,
        frame_step=4,
        max_frames=81,
        size_multiple=16,
        default_steps=40,
        default_guidance=5.0,
        memory_gib=48.0,
        quality=5,
        # WanImageToVideoPipeline: the image (and a last image) condition every step through
        # channels concatenated to the latents, plus CLIP image tokens in cross-attention.
        options={
            "flow_shift": 3.0,
            "pipeline": "WanImageToVideoPipeline",
            "conditioning": "image",
            "float32_components": _WAN_FLOAT32,
        },
        description="Wan 2.1 image-to-video 14B from a first frame; 5 s at 16 fps, 832x480.",
        # Its transformer takes 36 input channels: the video-to-video refinement cannot reuse it.
        upscaler=None,
        params_b=14.0,
        dit_width=5120,
        dit_depth=40,
    ),
    ModelCard(
        id="wan2.1-flf2v-14b-720p",
        family="wan",
        title="Wan 2.1 FLF2V 14B 720P",
        source="hub:Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers",
        licence=_WAN_LICENCE[0],
        licence_url=_WAN_LICENCE[1],
        authors=("Wan Team, Alibaba",),
        modes=_MODES["wan-flf2v"],
        native_width=1280,
        native_height=720,
        fps=16,
        frame_step=4,
        max_frames=81,
        size_multiple=16,
        # Wan's reference generate.py: 50 steps and shift 16 for first-last-frame (and VACE).
        default_steps=50,
        default_guidance=5.0,
        memory_gib=50.0,
        quality=5,
        # WanImageToVideoPipeline with ``last_image``: its image embedding has positions for the
        # first and the last frame's CLIP tokens, so it always takes both.
        options={
            "flow_shift": 16.0,
            "pipeline": "WanImageToVideoPipeline",
            "conditioning": "image",
            "float32_components": _WAN_FLOAT32,
        },
        description="Wan 2.1 first-last-frame 14B: a video between two frames; 5 s at 16 fps, 1280x720.",
        upscaler=None,
        params_b=14.0,
        dit_width=5120,
        dit_depth=40,
    ),
    ModelCard(
        id="wan2.1-vace-1.3b",
        family="wan",
        title="Wan 2.1 VACE 1.3B",
        source="hub:Wan-AI/Wan2.1-VACE-1.3B-diffusers",
        licence=_WAN_LICENCE[0],
        licence_url=_WAN_LICENCE[1],
        authors=("Wan Team, Alibaba",),
        modes=_MODES["wan-vace"],
        native_width=832,
        native_height=480,
        fps=16,
        frame_step=4,
        max_frames=81,
        size_multiple=16,
        # Wan's reference generate.py: 50 steps and shift 16 for VACE (and first-last-frame).
        default_steps=50,
        default_guidance=5.0,
        memory_gib=10.0,
        quality=2,
        # WanVACEPipeline: frames to keep enter as ``video`` + ``mask``, characters as
        # ``reference_images``; without either it is plain text-to-video.
        options={
            "flow_shift": 16.0,
            "pipeline": "WanVACEPipeline",
            "conditioning": "video",
            "float32_components": _WAN_FLOAT32,
        },
        description="Wan 2.1 VACE 1.3B: text, a first frame, a clip to extend, reference images; "
        "5 s at 16 fps, 832x480.",
        # Its transformer needs the VACE control input: the video-to-video refinement cannot reuse it.
        upscaler=None,
        params_b=1.3,
        dit_width=1536,
        dit_depth=30,
    ),
    # Wan 2.2 A14B: a high-noise expert (``transformer``) lays out the scene and a low-noise one
    # (``transformer_2``) refines it; the pipeline switches at boundary_ratio x 1000 timesteps.
    # Both experts' weights count in the memory figure (both stay resident unless offloaded; the
    # group offloading the planner picks when short keeps one block of the running expert). The
    # time estimate counts one expert, as one runs per step. Settings from Wan's own configs
    # (wan/configs/wan_{t2v,i2v}_A14B.py): 40 steps, sample_shift 12 (T2V) / 5 (I2V), guidance
    # 4.0 high-noise / 3.0 low-noise (T2V) and 3.5 / 3.5 (I2V).
    ModelCard(
        id="wan2.2-t2v-a14b",
        family="wan",
        title="Wan 2.2 T2V A14B",
        source="hub:Wan-AI/Wan2.2-T2V-A14B-Diffusers",
        licence=_WAN_LICENCE[0],
        licence_url=_WAN_LICENCE[1],
        authors=("Wan Team, Alibaba",),
        modes=_MODES["wan2.2-a14b"],
        native_width=1280,
        native_height=720,
        fps=16,
        frame_step=4,
        max_frames=81,
        size_multiple=16,
        default_steps=40,
        default_guidance=4.0,
        memory_gib=80.0,
        # Above Wan 2.1 14B: the Wan team's Wan-Bench 2.0 (Wan 2.2 release, July 2025) ranks A14B
        # first among open models; not measured by openreel.
        quality=6,
        options={"flow_shift": 12.0, "guidance_2_ratio": 0.75, "float32_components": _WAN_FLOAT32},
        description="Wan 2.2 mixture of two 14B experts (high- and low-noise); 5 s at 16 fps, 1280x720.",
        upscaler=None,
        params_b=14.0,
        dit_width=5120,
        dit_depth=40,
    ),
    ModelCard(
        id="wan2.2-i2v-a14b",
        family="wan",
        title="Wan 2.2 I2V A14B",
        source="hub:Wan-AI/Wan2.2-I2V-A14B-Diffusers",
        licence=_WAN_LICENCE[0],
        licence_url=_WAN_LICENCE[1],
        authors=("Wan Team, Alibaba",),
        modes=_MODES["wan-i2v"],
        native_width=1280,
        native_height=720,
        fps=16,
        frame_step=4,
        max_frames=81,
        size_multiple=16,
        default_steps=40,
        default_guidance=3.5,
        memory_gib=80.0,
        quality=6,
        # WanImageToVideoPipeline with two experts: the image enters through the 36 input channels
        # (no CLIP image encoder in Wan 2.2), and it was not trained on a last frame.
        options={
            "flow_shift": 5.0,
            "guidance_2_ratio": 1.0,
            "pipeline": "WanImageToVideoPipeline",
            "conditioning": "image",
            "float32_components": _WAN_FLOAT32,
        },
        description="Wan 2.2 image-to-video, two 14B experts, from a first frame; 5 s at 16 fps, 1280x720.",
        upscaler=None,
        params_b=14.0,
        dit_width=5120,
        dit_depth=40,
    ),
    # --- HunyuanVideo 1.5 (Tencent) ---
    # The 720p checkpoints (diffusers' conversion script: 720p_t2v shift 9, 720p_i2v shift 7,
    # guidance 6 for both); Tencent's defaults: 121 frames at 24 fps, 50 steps.
    ModelCard(
        id="hunyuanvideo-1.5-t2v",
        family="hunyuan15",
        title="HunyuanVideo 1.5 T2V 720p",
        source="hub:hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-720p_t2v",
        licence="Tencent Hunyuan Community License",
        licence_url="https://huggingface.co/tencent/HunyuanVideo-1.5/blob/main/LICENSE",
        authors=("Tencent Hunyuan",),
        modes=_MODES["hunyuan15"],
        native_width=1280,
        native_height=720,
        fps=24,
        frame_step=4,
        max_frames=121,
        size_multiple=16,
        default_steps=50,
        default_guidance=6.0,
        memory_gib=40.0,
        # Tencent's report (Nov 2025) rates 1.5 best among open models in its own evaluations, not
        # measured by openreel: ranked with HunyuanVideo and Wan 2.1 14B, below Wan 2.2 A14B, so
        # that an equal claim does not make the default a pipeline without step progress or cancel.
        quality=5,
        description="HunyuanVideo 1.5 (8.3B): 5 s at 24 fps, 1280x720, draws quoted text.",
        upscaler=None,
        params_b=8.3,
        dit_width=2048,
        dit_depth=54,
        max_total_seconds=121 / 24,
    ),
    ModelCard(
        id="hunyuanvideo-1.5-i2v",
        family="hunyuan15",
        title="HunyuanVideo 1.5 I2V 720p",
        source="hub:hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-720p_i2v",
        licence="Tencent Hunyuan Community License",
        licence_url="https://huggingface.co/tencent/HunyuanVideo-1.5/blob/main/LICENSE",
        authors=("Tencent Hunyuan",),
        modes=_MODES["wan-i2v"],
        native_width=1280,
        native_height=720,
        fps=24,
        frame_step=4,
        max_frames=121,
        size_multiple=16,
        default_steps=50,
        default_guidance=6.0,
        memory_gib=40.0,
        quality=5,
        # The pipeline sizes the video from the image (the bucket of about 960x960 pixels nearest
        # its aspect): given at the native size, the image gets the native bucket, and
        # post-processing fits the output.
        options={
            "pipeline": "HunyuanVideo15ImageToVideoPipeline",
            "conditioning": "image",
            "fixed_size": True,
            # Draft runs on the step-distilled 480p checkpoint when it is on this machine.
            "draft_model": "hunyuanvideo-1.5-i2v-8step",
        },
        description="HunyuanVideo 1.5 image-to-video (8.3B) from a first frame; 5 s at 24 fps, 1280x720.",
        upscaler=None,
        params_b=8.3,
        dit_width=2048,
        dit_depth=54,
        max_total_seconds=121 / 24,
    ),
    ModelCard(
        id="hunyuanvideo-1.5-i2v-8step",
        family="hunyuan15",
        title="HunyuanVideo 1.5 I2V 480p step-distilled",
        source="hub:hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-480p_i2v_step_distilled",
        licence="Tencent Hunyuan Community License",
        licence_url="https://huggingface.co/tencent/HunyuanVideo-1.5/blob/main/LICENSE",
        authors=("Tencent Hunyuan",),
        modes=_MODES["wan-i2v"],
        native_width=848,
        native_height=480,
        fps=24,
        frame_step=4,
        max_frames=121,
        size_multiple=16,
        # Tencent recommends 8 or 12 steps (4 runs faster, a little softer); distilled without
        # classifier-free guidance (MeanFlow: each step also sees the next timestep).
        default_steps=8,
        min_steps=4,
        default_guidance=1.0,
        memory_gib=20.0,
        quality=4,
        options={
            "pipeline": "HunyuanVideo15ImageToVideoPipeline",
            "conditioning": "image",
            "fixed_size": True,
            # Already the fast path: a draft keeps its steps instead of halving them.
            "step_distilled": True,
        },
        description="HunyuanVideo 1.5 image-to-video distilled to 8 steps; 5 s at 24 fps, 848x480.",
        upscaler=None,
        params_b=8.3,
        dit_width=2048,
        dit_depth=54,
        max_total_seconds=121 / 24,
    ),
    # --- SkyReels-V2 (Skywork AI) ---
    ModelCard(
        id="skyreels-v2-df-1.3b-540p",
        family="skyreels",
        title="SkyReels-V2 DF 1.3B 540P",
        source="hub:Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers",
        # The model card names Skywork's own licence; its text was not read here (no hub access).
        licence="Skywork Community License",
        licence_url="https://huggingface.co/Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers",
        authors=("Skywork AI",),
        modes=_MODES["skyreels-df"],
        native_width=960,
        native_height=544,
        fps=24,
        frame_step=4,
        # One pass makes 97 frames (the model card's 540P length); longer clips by diffusion forcing.
        max_frames=97,
        size_multiple=16,
        default_steps=30,
        default_guidance=6.0,
        memory_gib=12.0,
        # Wan 2.1 1.3B-sized: ranked with it (the SkyReels-V2 report's VBench figures put the
        # 14B models, not this 1.3B one, near the top).
        quality=2,
        # diffusers' docs (api/pipelines/skyreels_v2.md): shift 8 for T2V, 30 steps, guidance 6,
        # base_num_frames 97 at 540P, overlap_history 17 and addnoise_condition 20 for long clips.
        options={
            "flow_shift": 8.0,
            "float32_components": ("vae",),
            "diffusion_forcing": {"base_num_frames": 97, "overlap_history": 17, "addnoise_condition": 20},
        },
        description="Diffusion forcing: clips of a minute from one prompt at 24 fps, 960x544.",
        upscaler=None,
        params_b=1.3,
        dit_width=1536,
        dit_depth=30,
        max_total_seconds=60.0,
    ),
    # --- HunyuanVideo (Tencent) ---
    ModelCard(
        id="hunyuanvideo",
        family="hunyuan",
        title="HunyuanVideo 13B",
        source="hub:hunyuanvideo-community/HunyuanVideo",
        licence="Tencent Hunyuan Community License",
        licence_url="https://huggingface.co/tencent/HunyuanVideo/blob/main/LICENSE",
        authors=("Tencent Hunyuan",),
        modes=_MODES["hunyuan"],
        native_width=1280,
        native_height=720,
        fps=24,
        frame_step=4,
        max_frames=129,
        size_multiple=16,
        default_steps=50,
        default_guidance=6.0,
        memory_gib=60.0,
        quality=5,
        description="HunyuanVideo 13B; 5.4 s at 24 fps, 1280x720.",
        upscaler=None,
        params_b=13.0,
        dit_width=3072,
        dit_depth=60,
    ),
    ModelCard(
        id="hunyuanvideo-i2v",
        family="hunyuan",
        title="HunyuanVideo I2V 13B",
        source="hub:hunyuanvideo-community/HunyuanVideo-I2V",
        licence="Tencent Hunyuan Community License",
        licence_url="https://huggingface.co/tencent/HunyuanVideo-I2V/blob/main/LICENSE",
        authors=("Tencent Hunyuan",),
        modes=_MODES["hunyuan-i2v"],
        native_width=1280,
        native_height=720,
        fps=24,
        frame_step=4,
        max_frames=129,
        size_multiple=16,
        default_steps=50,
        default_guidance=6.0,
        # The 13B transformer plus a LLaVA-LLaMA 8B text encoder with its vision tower.
        memory_gib=62.0,
        quality=5,
        # HunyuanVideoImageToVideoPipeline on the 16-channel checkpoint: the image's latents
        # replace the first latent frame's tokens, and the LLaVA encoder reads the image with the
        # prompt. (The 33-channel checkpoint drops four frames from each result: not this one.)
        options={"pipeline": "HunyuanVideoImageToVideoPipeline", "conditioning": "image"},
        description="HunyuanVideo image-to-video 13B from a first frame; 5.4 s at 24 fps, 1280x720.",
        upscaler=None,
        params_b=13.0,
        dit_width=3072,
        dit_depth=60,
    ),
)


CARDS = CARDS + PYRAMID_FLOW_CARDS


def _twin(like: str, twin_id: str | None = None, **overrides) -> ModelCard:
    """The tiny twin card of a real card: its frame rule, fps, modes and settings, a small native
    size, random weights built from the real card's reference configuration (models/twins.py)."""
    real = next(card for card in CARDS if card.id == like)
    values = dict(
        id=twin_id or f"tiny-{like}",
        family=real.family,
        title=f"Tiny twin of {real.title} (random weights)",
        source="tiny",
        licence="Apache-2.0",
        licence_url="https://www.apache.org/licenses/LICENSE-2.0",
        authors=("openreel",),
        modes=real.modes,
        native_width=96,
        native_height=64,
        fps=real.fps,
        frame_step=real.frame_step,
        max_frames=real.max_frames,
        size_multiple=real.size_multiple,
        # A distilled card's fixed schedule sets its step count; others run short.
        default_steps=real.default_steps if "timesteps" in real.options else 4,
        default_guidance=real.default_guidance,
        memory_gib=0.1,
        quality=0,
        options=dict(real.options),
        upscaler=real.upscaler,
        max_total_seconds=real.max_total_seconds,
        min_steps=real.min_steps,
        params_b=0.0001,
        dit_width=32,
        dit_depth=2,
        description="Random tiny weights built in code: runs offline in seconds, output is noise.",
        twin_of=real.id,
    )
    values.update(overrides)
    return ModelCard(**values)


# Every real card has a twin. The first twins of each family kept their short names
# ("tiny-<family>"), which scripts and recipes already use.
_SHORT_TWIN_IDS = {
    "cogvideox-2b": "tiny-cogvideox",
    "cogvideox-5b-i2v": "tiny-cogvideox-i2v",
    "mochi-1": "tiny-mochi",
    "ltx-video-2b": "tiny-ltx",
    "wan2.1-t2v-1.3b": "tiny-wan",
    "wan2.1-i2v-14b-480p": "tiny-wan-i2v",
    "wan2.1-flf2v-14b-720p": "tiny-wan-flf2v",
    "wan2.1-vace-1.3b": "tiny-wan-vace",
    "hunyuanvideo": "tiny-hunyuan",
    "hunyuanvideo-i2v": "tiny-hunyuan-i2v",
    "hunyuanvideo-1.5-t2v": "tiny-hunyuan15",
    "skyreels-v2-df-1.3b-540p": "tiny-skyreels",
    "pyramid-flow-miniflux-384p": "tiny-pyramid-flow",
}
# LTX-Video's sides are multiples of 32 and its VAE compresses 32x: 128x64 keeps a 4x2 latent.
# Pyramid Flow's sides are multiples of 64.
_TWIN_SIZES = {"ltx": (128, 64), "ltx2": (128, 64), "pyramid-flow": (128, 64)}
# Pyramid Flow runs every step three times (its resolution stages): two keep its twin quick.
_TWIN_STEPS = {"pyramid-flow": 2}

TINY_CARDS: tuple[ModelCard, ...] = tuple(
    _twin(
        card.id,
        _SHORT_TWIN_IDS.get(card.id),
        **dict(zip(("native_width", "native_height"), _TWIN_SIZES.get(card.family, (96, 64)), strict=True)),
        **({"default_steps": _TWIN_STEPS[card.family]} if card.family in _TWIN_STEPS else {}),
    )
    for card in CARDS
)


def twin_for(card_id: str) -> ModelCard:
    """The twin of a real card."""
    return next(card for card in TINY_CARDS if card.twin_of == card_id)


# The activations of one transformer pass, per token and unit of width, in bytes: about 16 bf16
# tensors of the hidden size live at once (attention's q, k, v and output, the MLP's 4x hidden
# state, norms, the classifier-free guidance pair). An estimate until measured on a GPU
# (bench/gpu_smoke.py writes the measured peaks).
_ACTIVATION_BYTES = 2 * 16


def _sized(card: ModelCard) -> ModelCard:
    """A real card with its memory and transformer figures from its reference configuration:
    weights from the full-size parameter counts (bf16, float32 where the card loads a component
    so), activations for the longest clip at the native size."""
    counts = param_counts(card.id)
    if not counts:
        return card
    float32 = set(card.options.get("float32_components", ()))
    weights = sum(count * (4 if name in float32 else 2) for name, count in counts.items()) / 2**30
    width, depth = transformer_shape(card.id) or (card.dit_width, card.dit_depth)
    latent_frames = (card.max_frames - 1) // card.frame_step + 1
    patches = (card.native_width // card.size_multiple) * (card.native_height // card.size_multiple)
    tokens = latent_frames * patches
    activations = tokens * width * _ACTIVATION_BYTES / 2**30
    # Two-expert models (Wan 2.2 A14B) run one expert per step: time follows one of them.
    denoiser = max(count for name, count in counts.items() if name.startswith("transformer"))
    return replace(
        card,
        memory_gib=round(weights + activations, 1),
        weights_gib=round(weights, 1),
        params_b=round(denoiser / 1e9, 2),
        dit_width=width,
        dit_depth=depth,
    )


CARDS = tuple(_sized(card) for card in CARDS)

_BY_ID: dict[str, ModelCard] = {card.id: card for card in CARDS + TINY_CARDS}


def all_cards() -> list[ModelCard]:
    return list(_BY_ID.values())


def get_card(model_id: str) -> ModelCard:
    try:
        return _BY_ID[model_id]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {model_id!r}; known models: {', '.join(_BY_ID)} "
            "(see `openreel models list`), or give a local folder path",
            param="model",
        ) from None
