"""openreel: an open video studio on open video diffusion models.

Importing this package is cheap on purpose: torch, diffusers and PyAV load only when a
video is actually made, so the CLI and the server start fast.
"""

__version__ = "0.1.0"
