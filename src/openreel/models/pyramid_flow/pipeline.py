"""PyramidFlowPipeline: text-to-video and image-to-video with Pyramid Flow, the published sampler.

A video is made one latent frame ("unit") at a time, autoregressively. Each unit is denoised
through a spatial pyramid: stage 0 at 1/4 of the latent resolution, then each later stage
upsamples (nearest), re-noises with the scheduler's correction and continues at twice the size.
The transformer sees the unit's history in front of it, compressed the way the method trains it:
the newest earlier frame at the current stage's resolution, the one before at the previous stage's,
and everything older at the lowest resolution (a temporal pyramid).

Guidance is classifier-free with two scales, as the official inference does: ``guidance_scale``
for the first frame (which is an image problem) and ``video_guidance_scale`` for the later units.
The first latent frame is scaled with the image statistics of the VAE latent space and the others
with the video statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.image_processor import VaeImageProcessor
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from openreel.models.pyramid_flow.scheduler import PyramidFlowMatchScheduler

# The official inference appends this to every prompt "to improve aesthetics".
PROMPT_SUFFIX = ", hyper quality, Ultra HD, 8K"
DEFAULT_NEGATIVE_PROMPT = (
    "cartoon style, worst quality, low quality, blurry, absolute black, absolute white, low res, "
    "extra limbs, extra digits, misplaced objects, mutated anatomy, monochrome, horror"
)

# Statistics of the VAE latent space the transformers were trained with: the first frame is encoded
# alone, like an image, and has its own; miniflux and SD3 were trained with slightly different ones.
LATENT_STATISTICS: dict[str, dict[str, float]] = {
    "miniflux": {"image_latent_shift": -0.04, "image_latent_scale": 1 / 1.8726},
    "sd3": {"image_latent_shift": 0.1490, "image_latent_scale": 1 / 1.8415},
}
VIDEO_LATENT_SHIFT = -0.2343
VIDEO_LATENT_SCALE = 1 / 3.0986


@dataclass
class PyramidFlowPipelineOutput(BaseOutput):
    """``frames``: (batch, frames, height, width, 3) floats in [0, 1] for ``output_type="np"``,
    (batch, frames, 3, height, width) for ``"pt"``, lists of PIL images for ``"pil"``, or the
    latents (batch, 16, units, h, w) for ``"latent"``."""

    frames: Any


class PyramidFlowPipeline(DiffusionPipeline):
    r"""Pyramid Flow for both published variants.

    miniflux: ``tokenizer``/``text_encoder`` are CLIP-L (pooled output), ``tokenizer_2``/
    ``text_encoder_2`` T5-XXL. SD3: CLIP-L and CLIP-G (their projected pooled outputs, concatenated)
    in slots 1 and 2 and T5-XXL in slot 3.
    """

    model_cpu_offload_seq = "text_encoder->text_encoder_2->text_encoder_3->transformer->vae"
    _optional_components = ["tokenizer_3", "text_encoder_3"]
    _callback_tensor_inputs = ["latents"]

    def __init__(
        self,
        tokenizer: Any,
        text_encoder: Any,
        tokenizer_2: Any,
        text_encoder_2: Any,
        transformer: Any,
        vae: Any,
        scheduler: PyramidFlowMatchScheduler,
        tokenizer_3: Any = None,
        text_encoder_3: Any = None,
        image_latent_shift: float = LATENT_STATISTICS["miniflux"]["image_latent_shift"],
        image_latent_scale: float = LATENT_STATISTICS["miniflux"]["image_latent_scale"],
        video_latent_shift: float = VIDEO_LATENT_SHIFT,
        video_latent_scale: float = VIDEO_LATENT_SCALE,
    ) -> None:
        super().__init__()
        self.register_modules(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            tokenizer_2=tokenizer_2,
            text_encoder_2=text_encoder_2,
            tokenizer_3=tokenizer_3,
            text_encoder_3=text_encoder_3,
            transformer=transformer,
            vae=vae,
            scheduler=scheduler,
        )
        self.register_to_config(
            image_latent_shift=image_latent_shift,
            image_latent_scale=image_latent_scale,
            video_latent_shift=video_latent_shift,
            video_latent_scale=video_latent_scale,
        )
        self.vae_scale_factor_spatial = 8 if vae is None else vae.spatial_compression_ratio
        self.vae_scale_factor_temporal = 8 if vae is None else vae.temporal_compression_ratio
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor_spatial)

    # --- properties, as in other diffusers pipelines ----------------------------------------------

    @property
    def num_stages(self) -> int:
        return self.scheduler.config.stages

    @property
    def size_multiple(self) -> int:
        """Sides must divide by this: VAE factor x 2^(stages-1) pyramid x 2x2 patches."""
        return self.vae_scale_factor_spatial * 2 ** (self.num_stages - 1) * 2

    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self._do_cfg

    @property
    def num_timesteps(self) -> int:
        """Denoising steps of the whole call, all units and stages (what callbacks count up to)."""
        return self._num_timesteps

    @property
    def current_timestep(self) -> Any:
        return self._current_timestep

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    # --- 1. text ---------------------------------------------------------------------------------

    def _clip_pooled(
        self, tokenizer: Any, encoder: Any, prompt: list[str], device: torch.device
    ) -> torch.Tensor:
        ids = tokenizer(
            prompt,
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(device)
        output = encoder(ids)
        # CLIPTextModelWithProjection (SD3) returns text_embeds first; CLIPTextModel (miniflux) pools.
        return output.text_embeds if hasattr(output, "text_embeds") else output.pooler_output

    def encode_prompt(
        self, prompt: list[str], device: torch.device, max_sequence_length: int = 128
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(T5 embeddings, T5 attention mask, pooled CLIP embeddings) for each prompt."""
        if self.text_encoder_3 is None:
            pooled = self._clip_pooled(self.tokenizer, self.text_encoder, prompt, device)
            t5_tokenizer, t5_encoder = self.tokenizer_2, self.text_encoder_2
        else:
            pooled = torch.cat(
                [
                    self._clip_pooled(self.tokenizer, self.text_encoder, prompt, device),
                    self._clip_pooled(self.tokenizer_2, self.text_encoder_2, prompt, device),
                ],
                dim=-1,
            )
            t5_tokenizer, t5_encoder = self.tokenizer_3, self.text_encoder_3
        tokens = t5_tokenizer(
            prompt, padding="max_length", max_length=max_sequence_length, truncation=True, return_tensors="pt"
        )
        mask = tokens.attention_mask.to(device)
        embeds = t5_encoder(tokens.input_ids.to(device), attention_mask=mask)[0]
        dtype = self.transformer.dtype
        return embeds.to(dtype), mask, pooled.to(dtype)

    # --- 2. checks and latents ---------------------------------------------------------------------

    def check_inputs(
        self, prompt: Any, height: int, width: int, num_frames: int, tensor_inputs: list[str]
    ) -> None:
        if not isinstance(prompt, (str, list)):
            raise ValueError(f"prompt must be a string or a list of strings, not {type(prompt).__name__}")
        multiple = self.size_multiple
        if height % multiple or width % multiple:
            raise ValueError(f"height and width must be multiples of {multiple}; got {width}x{height}")
        step = self.vae_scale_factor_temporal
        if num_frames < 1 or (num_frames - 1) % step:
            raise ValueError(
                f"num_frames must be {step}k+1 (1, {step + 1}, {2 * step + 1}, ...); got {num_frames}"
            )
        unknown = [name for name in tensor_inputs if name not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(
                f"callback_on_step_end_tensor_inputs {unknown} not in {self._callback_tensor_inputs}"
            )

    def prepare_noise(
        self, batch: int, units: int, height: int, width: int, generator: Any, device: torch.device
    ) -> torch.Tensor:
        """Noise for every unit at the lowest stage: drawn at the full latent size, then halved per
        stage with bilinear resampling times 2, as the published sampler starts."""
        channels = self.vae.config.decoder_in_channels
        shape = (
            batch,
            channels,
            units,
            height // self.vae_scale_factor_spatial,
            width // self.vae_scale_factor_spatial,
        )
        noise = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        frames = noise.permute(0, 2, 1, 3, 4).reshape(batch * units, channels, *shape[-2:])
        for _ in range(self.num_stages - 1):
            frames = (
                F.interpolate(frames, size=(frames.shape[-2] // 2, frames.shape[-1] // 2), mode="bilinear")
                * 2
            )
        return frames.reshape(batch, units, channels, *frames.shape[-2:]).permute(0, 2, 1, 3, 4)

    def latent_pyramid(self, latents: torch.Tensor) -> list[torch.Tensor]:
        """The clean history at every stage's resolution, lowest first (bilinear halving)."""
        levels = [latents]
        b, c, t = latents.shape[:3]
        frames = latents.permute(0, 2, 1, 3, 4).reshape(b * t, c, *latents.shape[-2:])
        for _ in range(self.num_stages - 1):
            frames = F.interpolate(
                frames, size=(frames.shape[-2] // 2, frames.shape[-1] // 2), mode="bilinear"
            )
            levels.append(frames.reshape(b, t, c, *frames.shape[-2:]).permute(0, 2, 1, 3, 4))
        return levels[::-1]

    def history_conditions(self, history: list[torch.Tensor]) -> list[list[torch.Tensor]]:
        """For each stage, the clips placed before the unit being denoised, oldest first.

        At stage s the newest earlier frame is at stage s's resolution, the one before it at stage
        s-1's, and so on down to stage 1; everything older is at the lowest resolution (stage 0).
        """
        if not history:
            return [[] for _ in range(self.num_stages)]
        pyramid = self.latent_pyramid(torch.cat(history, dim=2))
        count = len(history)
        conditions = []
        for stage in range(self.num_stages):
            clips = [pyramid[stage][:, :, -1:]]
            level, taken = stage, 1
            while taken < count and level > 1:
                level -= 1
                taken += 1
                clips.append(pyramid[level][:, :, -taken : -(taken - 1)])
            if taken < count:
                clips.append(pyramid[0][:, :, :-taken])
            conditions.append(clips[::-1])
        return conditions

    def encode_image(
        self, image: Any, height: int, width: int, generator: Any, device: torch.device
    ) -> torch.Tensor:
        pixels = self.image_processor.preprocess(image, height=height, width=width)
        pixels = pixels.to(device=device, dtype=self.vae.dtype)[:, :, None]
        latent = self.vae.encode(pixels).latent_dist.sample(generator=generator)
        return (latent.float() - self.config.image_latent_shift) * self.config.image_latent_scale

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        latents = latents.float().clone()
        latents[:, :, :1] = (
            latents[:, :, :1] / self.config.image_latent_scale + self.config.image_latent_shift
        )
        latents[:, :, 1:] = (
            latents[:, :, 1:] / self.config.video_latent_scale + self.config.video_latent_shift
        )
        # The published decode: one latent frame per temporal chunk (its default save_memory=True);
        # spatial tiles when the VAE's tiling is enabled.
        return self.vae.decode(latents.to(self.vae.dtype), temporal_chunk=True, window_size=1).sample

    # --- 3. one unit ------------------------------------------------------------------------------

    def denoise_unit(
        self,
        latents: torch.Tensor,
        conditions: list[list[torch.Tensor]],
        steps: list[int],
        scale: float,
        text: dict[str, torch.Tensor],
        generator: Any,
        callback: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """Run every stage of the pyramid for one unit; returns its full-resolution latent."""
        device = latents.device
        for stage in range(self.num_stages):
            self.scheduler.set_timesteps(steps[stage], stage, device=device)
            if stage > 0:
                latents = F.interpolate(latents.squeeze(2), scale_factor=2, mode="nearest")[:, :, None]
                alpha, beta = self.scheduler.renoise_coefficients(stage)
                noise = self.scheduler.block_noise(tuple(latents.shape), generator, device, latents.dtype)
                latents = alpha * latents + beta * noise
            history = [torch.cat([clip] * 2) if self._do_cfg else clip for clip in conditions[stage]]
            for t in self.scheduler.timesteps:
                if self.interrupt:
                    continue
                self._current_timestep = t
                model_input = torch.cat([latents] * 2) if self._do_cfg else latents
                dtype = self.transformer.dtype
                velocity = self.transformer(
                    hidden_states=[clip.to(dtype) for clip in history] + [model_input.to(dtype)],
                    encoder_hidden_states=text["embeds"],
                    encoder_attention_mask=text["mask"],
                    pooled_projections=text["pooled"],
                    timestep=t.expand(model_input.shape[0]).to(dtype),
                ).sample.float()
                if self._do_cfg:
                    uncond, cond = velocity.chunk(2)
                    velocity = uncond + scale * (cond - uncond)
                latents = self.scheduler.step(velocity, t, latents).prev_sample
                latents = callback(latents, t)
        return latents

    # --- 4. the call ------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        image: PIL.Image.Image | np.ndarray | torch.Tensor | None = None,
        height: int = 384,
        width: int = 640,
        num_frames: int = 121,
        num_inference_steps: int | list[int] = 20,
        video_num_inference_steps: int | list[int] = 10,
        guidance_scale: float = 7.0,
        video_guidance_scale: float = 5.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        max_sequence_length: int = 128,
        prompt_suffix: str = PROMPT_SUFFIX,
    ) -> PyramidFlowPipelineOutput | tuple:
        r"""Make a video of ``num_frames`` (8k+1) frames at ``height`` x ``width``.

        ``num_inference_steps`` are the Euler steps per stage for the first frame (text-to-video),
        ``video_num_inference_steps`` those for every later unit (and all units of image-to-video);
        each may be one number or one per stage. With ``image`` the first frame is that picture
        (resized to the requested size) and the rest continues it.
        """
        # 1. Check inputs
        tensor_inputs = callback_on_step_end_tensor_inputs or ["latents"]
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            tensor_inputs = callback_on_step_end.tensor_inputs
        self.check_inputs(prompt, height, width, num_frames, tensor_inputs)
        stages = self.num_stages
        first_steps = (
            [num_inference_steps] * stages if isinstance(num_inference_steps, int) else num_inference_steps
        )
        video_steps = (
            [video_num_inference_steps] * stages
            if isinstance(video_num_inference_steps, int)
            else video_num_inference_steps
        )
        if len(first_steps) != stages or len(video_steps) != stages:
            raise ValueError(f"give one step count or one per stage ({stages})")
        self._guidance_scale = guidance_scale
        # A scale of 1 gives the conditional prediction itself: no unconditional pass is needed.
        self._do_cfg = max(guidance_scale, video_guidance_scale) > 1.0
        self._interrupt = False
        self._current_timestep = None
        device = self._execution_device

        # 2. Encode the prompts (negative first, as the official sampler batches them)
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        batch = len(prompts)
        prompts = [text + prompt_suffix for text in prompts]
        embeds, mask, pooled = self.encode_prompt(prompts, device, max_sequence_length)
        if self._do_cfg:
            negative = negative_prompt if negative_prompt is not None else DEFAULT_NEGATIVE_PROMPT
            negatives = [negative] * batch if isinstance(negative, str) else list(negative)
            neg_embeds, neg_mask, neg_pooled = self.encode_prompt(negatives, device, max_sequence_length)
            embeds, mask, pooled = (
                torch.cat([neg_embeds, embeds]),
                torch.cat([neg_mask, mask]),
                torch.cat([neg_pooled, pooled]),
            )
        text = {"embeds": embeds, "mask": mask, "pooled": pooled}

        # 3. Noise for every unit, at the lowest stage's resolution
        units = (num_frames - 1) // self.vae_scale_factor_temporal + 1
        noise = self.prepare_noise(batch, units, height, width, generator, device)
        history: list[torch.Tensor] = []
        first_unit = 0
        if image is not None:
            history.append(
                self.encode_image(image, height, width, generator, device).expand(batch, -1, -1, -1, -1)
            )
            first_unit = 1

        # 4. Count the steps the callbacks will see
        self._num_timesteps = sum(
            sum(first_steps if unit == 0 and image is None else video_steps)
            for unit in range(first_unit, units)
        )
        step_index = 0

        # 5. The autoregressive loop over units, each a spatial pyramid
        with self.progress_bar(total=self._num_timesteps) as progress:

            def on_step(latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                nonlocal step_index
                if callback_on_step_end is not None:
                    local = {"latents": latents}
                    outputs = callback_on_step_end(self, step_index, t, {k: local[k] for k in tensor_inputs})
                    latents = outputs.pop("latents", latents)
                step_index += 1
                progress.update()
                return latents

            for unit in range(first_unit, units):
                is_first_frame = unit == 0
                latents = self.denoise_unit(
                    noise[:, :, unit : unit + 1],
                    self.history_conditions(history),
                    first_steps if is_first_frame else video_steps,
                    guidance_scale if is_first_frame else video_guidance_scale,
                    text,
                    generator,
                    on_step,
                )
                history.append(latents.float())
        self._current_timestep = None
        latents = torch.cat(history, dim=2)

        # 6. Decode
        if output_type == "latent":
            frames: Any = latents
        else:
            video = self.decode_latents(latents)
            video = (video.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 4, 1)  # (b, t, h, w, 3)
            if output_type == "np":
                frames = video.cpu().numpy()
            elif output_type == "pt":
                frames = video.permute(0, 1, 4, 2, 3)
            elif output_type == "pil":
                frames = [self.image_processor.numpy_to_pil(clip.cpu().numpy()) for clip in video]
            else:
                raise ValueError(f"output_type must be np, pt, pil or latent; got {output_type!r}")
        self.maybe_free_model_hooks()
        if not return_dict:
            return (frames,)
        return PyramidFlowPipelineOutput(frames=frames)
