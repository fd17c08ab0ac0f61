"""Model cards of the Pyramid Flow family (registered in ``openreel.models.catalog``).

The published checkpoints make 24 fps video from latent units of one latent frame each; the VAE
turns k+1 latent frames into 8k+1 frames, so frames are 8k+1: 121 (5 s, 16 units) for the 384p
checkpoints and up to 241 (10 s, 31 units) for 768p. Sides must divide by 64 (VAE 8 x three pyramid
stages 4 x patches 2). ``default_steps`` are the first frame's Euler steps per stage; later units
use half as many (the published 20/10 recipe), see ``families/pyramid_flow.py``.
"""

from __future__ import annotations

from openreel.models.card import ModelCard

FAMILY = "pyramid-flow"
_AUTHORS = ("Yang Jin", "Zhicheng Sun", "Ningyuan Li", "et al. (Peking University, Kuaishou, BUPT)")


def _card(variant: str, resolution: str, **values) -> ModelCard:
    repo = f"rain1011/pyramid-flow-{variant}"
    big = resolution == "768p"
    base = dict(
        id=f"pyramid-flow-{variant}-{resolution}",
        family=FAMILY,
        source=f"hub:{repo}",
        authors=_AUTHORS,
        modes=frozenset({"t2v", "i2v", "still"}),
        native_width=1280 if big else 640,
        native_height=768 if big else 384,
        fps=24,
        frame_step=8,
        max_frames=241 if big else 121,
        # The temporal loop is the method's own autoregression; openreel adds no windows to it.
        max_total_seconds=(241 if big else 121) / 24,
        size_multiple=64,
        default_steps=20,
        default_guidance=7.0,
        options={
            "variant": variant,
            "resolution": resolution,
            # The README's recipe: first-frame guidance 7, later units 5 (t2v) or 4 (i2v).
            "video_guidance_scale": 5.0,
            "i2v_video_guidance_scale": 4.0,
            # The published repos are not in diffusers layout and hold both resolutions: fetch
            # one, and know it is there by its VAE config.
            "weights_marker": "causal_video_vae/config.json",
            "allow_patterns": [
                f"diffusion_transformer_{resolution}/*",
                "causal_video_vae/*",
                "text_encoder*/*",
                "tokenizer*/*",
            ],
        },
    )
    base.update(values)
    return ModelCard(**base)


_MINIFLUX_LICENCE = ("MIT", "https://huggingface.co/rain1011/pyramid-flow-miniflux")
# The SD3 variant is initialised from Stable Diffusion 3 Medium; its weights follow that licence.
_SD3_LICENCE = ("Stability AI Community License", "https://huggingface.co/rain1011/pyramid-flow-sd3")

CARDS: tuple[ModelCard, ...] = (
    _card(
        "miniflux",
        "384p",
        title="Pyramid Flow miniFLUX 384p",
        licence=_MINIFLUX_LICENCE[0],
        licence_url=_MINIFLUX_LICENCE[1],
        memory_gib=22.0,
        quality=2,
        description="Autoregressive pyramidal flow (miniFLUX DiT); 5 s at 24 fps, 640x384.",
    ),
    _card(
        "miniflux",
        "768p",
        title="Pyramid Flow miniFLUX 768p",
        licence=_MINIFLUX_LICENCE[0],
        licence_url=_MINIFLUX_LICENCE[1],
        memory_gib=36.0,
        quality=4,
        description="Autoregressive pyramidal flow (miniFLUX DiT); up to 10 s at 24 fps, 1280x768.",
    ),
    _card(
        "sd3",
        "384p",
        title="Pyramid Flow SD3 384p",
        licence=_SD3_LICENCE[0],
        licence_url=_SD3_LICENCE[1],
        memory_gib=24.0,
        quality=1,
        description="The first Pyramid Flow release (SD3-style MMDiT); 5 s at 24 fps, 640x384.",
    ),
    _card(
        "sd3",
        "768p",
        title="Pyramid Flow SD3 768p",
        licence=_SD3_LICENCE[0],
        licence_url=_SD3_LICENCE[1],
        memory_gib=38.0,
        quality=3,
        description="The first Pyramid Flow release (SD3-style MMDiT); up to 10 s at 24 fps, 1280x768.",
    ),
)
