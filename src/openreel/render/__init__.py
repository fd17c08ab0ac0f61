"""Render: the only part of openreel that touches torch, diffusers and PyAV.

- ``runner``: runs the diffusers pipeline(s) of a plan.
- ``post``: scales, crops and retimes the raw frames to exactly what was asked (streaming).
- ``encode``: streaming H.264 MP4, thumbnail and spritesheet, all written atomically.

Nothing heavy is imported here; each module imports its libraries when first used.
"""
