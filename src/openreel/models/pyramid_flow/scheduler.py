"""The pyramidal flow-matching scheduler of Pyramid Flow (Jin et al., 2024, arXiv:2410.05954).

One flow from noise (sigma 1) to data (sigma 0) is cut into ``stages`` pieces. Stage k runs at
1/2^(stages-1-k) of the final resolution and moves the latent from its own start point to its own
end point along a straight line; inside a stage the Euler steps therefore walk a local ratio from 1
(the stage's start point) to 0 (its end point), exactly like rectified flow.

Between stages the latent is upsampled (nearest) and partly re-noised. Upsampling turns independent
per-pixel noise into 2x2 blocks of equal noise; the published correction adds fresh noise whose 2x2
blocks are negatively correlated (covariance (1+gamma) I - gamma 11^T) and rescales, so that the
start of the next stage is again a point on a straight path between noise and the upsampled signal.
With s the signal coefficient at the end of the previous stage:

    alpha = 1 / (sqrt(1 + 1/gamma) * (1 - s) + s)      (rescales the upsampled latent)
    beta  = alpha * (1 - s) / sqrt(gamma)              (scales the correlated block noise)

and the next stage starts at noise level 1 - alpha * s. The timestep given to the transformer is
not the local ratio: the whole [0, 1000] training range is split among the stages in proportion
to each stage's length in sigma, and each stage's timesteps are spaced linearly in its share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor


@dataclass
class PyramidFlowSchedulerOutput(BaseOutput):
    prev_sample: torch.Tensor


class PyramidFlowMatchScheduler(SchedulerMixin, ConfigMixin):
    """Euler steps within each stage of a spatial pyramid of flows.

    Args:
        num_train_timesteps: length of the training timestep grid (1000).
        shift: SD3-style timestep shift of the global sigma grid (1.0 in the published models).
        stages: number of spatial stages (3: 1/4, 1/2 and full resolution).
        stage_range: where each stage begins and ends on the global [0, 1] schedule.
        gamma: the correlation of the re-noising block noise (1/3 in the published models).
    """

    _compatibles: list[str] = []
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        shift: float = 1.0,
        stages: int = 3,
        stage_range: tuple[float, ...] = (0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0),
        gamma: float = 1.0 / 3.0,
    ) -> None:
        if len(stage_range) != stages + 1:
            raise ValueError(
                f"stage_range needs {stages + 1} boundaries for {stages} stages, got {stage_range}"
            )
        n = num_train_timesteps
        # The global training grid: sigma = t / n for t = n, n-1, ..., 1, then the SD3 shift.
        sigmas = torch.arange(n, 0, -1, dtype=torch.float64) / n
        self.train_sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
        self.train_timesteps = self.train_sigmas * n

        self.ori_start_sigmas: list[float] = []
        self.start_sigmas: list[float] = []
        self.end_sigmas: list[float] = []
        for k in range(stages):
            start_index = max(int(stage_range[k] * n), 0)
            end_index = min(int(stage_range[k + 1] * n), n)
            start = float(self.train_sigmas[start_index])
            end = float(self.train_sigmas[end_index]) if end_index < n else 0.0
            self.ori_start_sigmas.append(start)
            if k > 0:
                # The re-noising correction lowers the signal at the start of every later stage.
                start = 1.0 - self.renoise_coefficients_for(start, gamma)[0] * (1.0 - start)
            self.start_sigmas.append(start)
            self.end_sigmas.append(end)

        # Each stage gets a share of the timestep range proportional to the sigma distance it covers.
        lengths = [s - e for s, e in zip(self.start_sigmas, self.end_sigmas, strict=True)]
        total = sum(lengths)
        bounds = [sum(lengths[:k]) / total for k in range(stages)] + [1.0]
        self.timestep_ratios = [(bounds[k], bounds[k + 1]) for k in range(stages)]
        self.stage_timestep_bounds: list[tuple[float, float]] = []
        for low, high in self.timestep_ratios:
            t_max = float(self.train_timesteps[int(low * n)])
            t_min = float(self.train_timesteps[min(int(high * n), n - 1)])
            # The training grid of a stage is linspace(t_max, t_min, n + 1) without its last point;
            # inference spans the same first and last grid points.
            self.stage_timestep_bounds.append((t_max, t_max + (t_min - t_max) * (n - 1) / n))

        self.timesteps = torch.empty(0)
        self.sigmas = torch.empty(0)
        self.stage_index: int | None = None
        self._step_index: int | None = None
        self._begin_index: int | None = None

    @staticmethod
    def renoise_coefficients_for(ori_start_sigma: float, gamma: float) -> tuple[float, float]:
        """(alpha, beta) of the correction at the start of a stage whose uncorrected start is
        ``ori_start_sigma`` (the previous stage's end)."""
        signal = 1.0 - ori_start_sigma
        alpha = 1.0 / (math.sqrt(1.0 + 1.0 / gamma) * (1.0 - signal) + signal)
        beta = alpha * (1.0 - signal) / math.sqrt(gamma)
        return alpha, beta

    def renoise_coefficients(self, stage_index: int) -> tuple[float, float]:
        if stage_index == 0:
            raise ValueError("the first stage starts from pure noise; there is nothing to re-noise")
        return self.renoise_coefficients_for(self.ori_start_sigmas[stage_index], self.config.gamma)

    def block_noise(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator | None,
        device: torch.device,
        dtype: torch.dtype,
    ) -> torch.Tensor:
        """Gaussian noise whose 2x2 spatial blocks have covariance (1+gamma) I - gamma 11^T.

        Drawn as L z with L the Cholesky factor, so the caller's generator decides it (the published
        code samples from the global RNG; the distribution is the same).
        """
        *lead, height, width = shape
        gamma = self.config.gamma
        covariance = torch.eye(4, dtype=torch.float64) * (1 + gamma) - gamma
        factor = torch.linalg.cholesky(covariance).to(device=device, dtype=torch.float32)
        z = randn_tensor(
            (*lead, height // 2, width // 2, 4), generator=generator, device=device, dtype=torch.float32
        )
        blocks = z @ factor.T
        # (..., h, w, 2, 2) -> (..., h, 2, w, 2) -> (..., 2h, 2w); the four entries fill p, q row-major.
        blocks = blocks.reshape(*lead, height // 2, width // 2, 2, 2).transpose(-3, -2)
        return blocks.reshape(*lead, height, width).to(device=device, dtype=dtype)

    @property
    def step_index(self) -> int | None:
        return self._step_index

    @property
    def begin_index(self) -> int | None:
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        self._begin_index = begin_index

    def set_timesteps(
        self, num_inference_steps: int, stage_index: int = 0, device: str | torch.device | None = None
    ) -> None:
        """Prepare ``num_inference_steps`` Euler steps of one stage."""
        if num_inference_steps < 1:
            raise ValueError("num_inference_steps must be at least 1")
        n = self.config.num_train_timesteps
        t_max, t_min = self.stage_timestep_bounds[stage_index]
        self.timesteps = torch.linspace(t_max, t_min, num_inference_steps, dtype=torch.float64).to(
            device=device, dtype=torch.float32
        )
        # Local ratios from the stage's start point (1) towards its end point; the training grid's
        # smallest ratio is 1/n, and the last Euler step lands exactly on 0.
        ratios = torch.linspace(1.0, 1.0 / n, num_inference_steps, dtype=torch.float64)
        self.sigmas = torch.cat([ratios, torch.zeros(1, dtype=torch.float64)]).to(
            device=device, dtype=torch.float32
        )
        self.num_inference_steps = num_inference_steps
        self.stage_index = stage_index
        self._step_index = None
        self._begin_index = None

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        return_dict: bool = True,
    ) -> PyramidFlowSchedulerOutput | tuple[torch.Tensor]:
        """One Euler step: x <- x + (ratio_next - ratio) * v, in float32."""
        if self._step_index is None:
            self._step_index = self._begin_index or 0
        sigma = self.sigmas[self._step_index]
        sigma_next = self.sigmas[self._step_index + 1]
        prev_sample = sample.to(torch.float32) + (sigma_next - sigma) * model_output.to(torch.float32)
        prev_sample = prev_sample.to(model_output.dtype)
        self._step_index += 1
        if not return_dict:
            return (prev_sample,)
        return PyramidFlowSchedulerOutput(prev_sample=prev_sample)

    def __len__(self) -> int:
        return self.config.num_train_timesteps
