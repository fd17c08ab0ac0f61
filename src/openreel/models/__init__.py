"""Model cards, family modules, weights and tiny builds."""
