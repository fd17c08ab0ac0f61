"""Pyramid Flow (Jin et al., 2024; jy0205/Pyramid-Flow, MIT), ported natively to diffusers-style parts.

Nothing here is imported at ``import openreel``: the family module imports these lazily.
"""
