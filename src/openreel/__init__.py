"""openreel: an open video studio on open video diffusion models.

Importing this package is cheap on purpose: torch, diffusers and PyAV load only when a
video is actually made, so the CLI and the server start fast.
"""

__version__ = "0.1.0"

# torchao (openreel[quant]) logs harmless warnings when diffusers imports it; set before any import.
from openreel.render.quantize import quiet_backend_logs as _quiet_backend_logs  # noqa: E402

_quiet_backend_logs()
