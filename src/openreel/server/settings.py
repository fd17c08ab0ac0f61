"""Server settings: one pydantic object built from command-line options over ``OPENREEL_*``
environment variables over defaults, handed to ``build_app`` and reachable from routes through
the ``get_settings`` dependency (which tests may override)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from openreel import paths

# The dated snapshots OpenAI published behind each name; code written against them maps the same.
SORA_2_NAMES = ("sora-2", "sora-2-2025-10-06", "sora-2-2025-12-08")
SORA_2_PRO_NAMES = ("sora-2-pro", "sora-2-pro-2025-10-06")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float | None:
    """``"7d"``, ``"12h"``, ``"30m"``, ``"90"`` (seconds) -> seconds; ``"0"``, ``"never"``, ``""`` -> None."""
    text = text.strip().lower()
    if text in ("", "0", "never", "none", "forever"):
        return None
    number, unit = (text[:-1], text[-1]) if text[-1] in _UNITS else (text, "s")
    try:
        return float(number) * _UNITS[unit]
    except ValueError:
        raise ValueError(f"retention must be a duration such as 7d, 12h or 3600 (got {text!r})") from None


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # None: SQLite at $OPENREEL_HOME/openreel.db. "postgresql://..." for a shared queue.
    database_url: str | None = None
    workers: int = Field(1, ge=0, le=64, description="local worker threads; 0 queues jobs for other servers")
    # What `model: "sora-2"` and `"sora-2-pro"` mean here. None: what the CLI runs when no model is
    # named (openreel.engine.default_model: the best downloaded model that fits, else a tiny one).
    sora_2_model: str | None = None
    sora_2_pro_model: str | None = None
    # What OpenAI's image model names (gpt-image-1, dall-e-3, ...) mean here; None: the sora-2 model.
    image_model: str | None = None
    # OpenAI's defaults when a request leaves them out.
    default_size: str = "720x1280"
    default_seconds: str = "4"
    # input_reference uploads: bytes on the wire, and decoded pixels (decompression bombs).
    max_upload_bytes: int = Field(20 * 2**20, ge=1)
    max_upload_pixels: int = Field(8192 * 8192, ge=1)
    # What decoding one uploaded image may cost (pixels x channels x bytes per channel).
    max_decoded_bytes: int = Field(64 * 2**20, ge=1)
    max_body_bytes: int = Field(25 * 2**20, ge=1)
    # input_reference.image_url as an https URL: fetched only when opted in, from public addresses
    # only (unless fetch_private_urls, which also allows http), within the upload size and a time limit.
    fetch_image_urls: bool = False
    fetch_private_urls: bool = False
    fetch_timeout_s: float = Field(10.0, gt=0)
    # None: $OPENREEL_HOME/outputs (openreel.paths.outputs_dir()).
    output_dir: Path | None = None
    upload_dir: Path | None = None
    # The LoRAs requests may name (files or folders of .safetensors); None: $OPENREEL_HOME/loras.
    lora_dir: Path | None = None
    insecure_no_auth: bool = False
    # The visible "AI-generated" label on every output unless a request says (its ``label``);
    # None: the owner's default (OPENREEL_LABEL or label.toml, provenance/label.py).
    label: bool | None = None
    # How long a finished video or still is kept (seconds; "7d", "12h", "30m" are read too), then
    # its files and row are swept. None keeps everything.
    retention: float | None = Field(None, gt=0)
    sweep_every_s: float = Field(60.0, gt=0)
    # Where video.completed / video.failed events are POSTed, signed with webhook_secret
    # (Standard Webhooks, as OpenAI signs them: a "whsec_..." secret verifies with the SDK).
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_poll_s: float = Field(1.0, gt=0)
    webhook_backoff_s: float = Field(5.0, gt=0)
    webhook_max_attempts: int = Field(12, ge=1)
    # Names besides localhost and loopback addresses a loopback-bound server answers to (DNS rebinding).
    allowed_hosts: list[str] = Field(default_factory=list)
    # A job whose worker died is run again at most this many times in all.
    max_attempts: int = Field(3, ge=1, le=20)
    # A claim with no heartbeat for this long belongs to a dead worker (on another machine).
    stale_after_s: float = Field(120.0, gt=0)
    heartbeat_s: float = Field(10.0, gt=0)
    # How often an idle worker looks for jobs queued by other processes.
    idle_poll_s: float = Field(0.5, gt=0)
    # Who runs the jobs: "local" worker threads, or "ray" actors on a Ray cluster (openreel.jobs.
    # ray_executor; the database stays the queue, PostgreSQL when the cluster has several machines).
    executor: Literal["local", "ray"] = "local"
    # auto (the cluster `ray start` made here), host:port of its head (GCS), or ray://host:port.
    ray_address: str = "auto"
    # Ray workers to start; None: one per GPU of the cluster, or one per node when it has none.
    ray_workers: int | None = Field(None, ge=1, le=1024)
    # Each Ray worker's device memory as placement counts it; None: what the device has free.
    ray_worker_memory_gib: float | None = Field(None, gt=0)
    # GPUs each Ray worker holds (one node, a placement group): a job spreads over them by
    # context parallelism (render.parallel); requests asking more are refused at the door.
    ray_gpus_per_worker: int = Field(1, ge=1, le=64)
    # How long POST /v1/images/generations waits for its still before answering 504.
    image_wait_s: float = Field(600.0, gt=0)
    poll_min_ms: int = Field(250, ge=1)
    poll_max_ms: int = Field(10_000, ge=1)
    log_level: str = "info"

    @field_validator("retention", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_duration(value)
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # OPENREEL_ALLOWED_HOSTS=a.example,b.example
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError(
                "a webhook URL needs a secret to sign with: --webhook-secret whsec_<base64 of 32 random "
                "bytes>, e.g. from: python -c \"import base64,os; print(base64.b64encode(os.urandom(32)))\""
            )
        if self.webhook_url and not self.webhook_url.startswith(("https://", "http://")):
            raise ValueError("the webhook URL must be http:// or https://")
        return self

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Defaults, then ``OPENREEL_<FIELD>`` environment variables, then ``overrides`` that are not
        None (typer passes None for options a person did not give)."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            env = os.environ.get(f"OPENREEL_{name.upper()}")
            if env is not None and env != "":
                values[name] = env
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    @property
    def outputs_path(self) -> Path:
        return Path(self.output_dir) if self.output_dir else paths.outputs_dir()

    @property
    def uploads_path(self) -> Path:
        return Path(self.upload_dir) if self.upload_dir else paths.home() / "uploads"

    @property
    def loras_path(self) -> Path:
        return Path(self.lora_dir) if self.lora_dir else paths.loras_dir()

    def private_roots(self) -> tuple[str, ...]:
        """Folders whose paths never leave the server in a message."""
        folders = (self.outputs_path, self.uploads_path, self.loras_path, paths.home())
        return tuple({str(path) for path in folders} | {str(path.resolve()) for path in folders})

    def model_aliases(self) -> dict[str, str]:
        """Every alias and the model it maps to (for listings: probing the default model imports
        torch, so requests that name a model use ``resolve_model``)."""
        return {name: self.resolve_model(name) for name in (*SORA_2_NAMES, *SORA_2_PRO_NAMES)}

    def resolve_model(self, asked: str) -> str:
        """The catalog id a request's model names: the configured or default model for Sora's
        names, else the name itself. Only an unconfigured alias probes the hardware."""
        if asked in SORA_2_NAMES and self.sora_2_model:
            return self.sora_2_model
        if asked in SORA_2_PRO_NAMES and self.sora_2_pro_model:
            return self.sora_2_pro_model
        if asked in SORA_2_NAMES or asked in SORA_2_PRO_NAMES:
            from openreel.engine import default_model
            from openreel.hardware import detect

            return default_model(detect()).id
        return asked


def get_settings(request: Request) -> Settings:
    return request.app.state.settings
