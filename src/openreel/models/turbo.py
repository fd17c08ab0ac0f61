"""Draft quality's fastest path per family: a model's own distilled checkpoint, where it has one.

A card names its distilled sibling in ``options["draft_model"]`` (LTX-Video 13B dev ->
13B distilled: 8 steps without classifier-free guidance, published by Lightricks for exactly this).
``--quality draft`` then runs the sibling when its weights are on this machine (a twin's always
are: it is built in code) and it can make the asked mode; otherwise the draft falls back to fewer
steps and the block cache (plan.plan_quality), and says which model to pull for a faster one.
"""

from __future__ import annotations

from openreel.models.card import ModelCard

# spec.extra key: the model a draft was asked of, when it runs on that model's distilled sibling.
DRAFT_OF = "draft_of"


def distilled_sibling(card: ModelCard) -> ModelCard | None:
    """The card's distilled sibling (a twin's is the sibling's twin), or None."""
    from openreel.models.catalog import get_card, twin_for

    name = card.options.get("draft_model")
    if not name:
        return None
    return twin_for(name) if card.is_tiny else get_card(name)


def draft_card(card: ModelCard, mode: str) -> tuple[ModelCard | None, str]:
    """(the card a draft runs on instead of ``card``, or None; a note when there could be one)."""
    from openreel.models.weights import is_downloaded

    sibling = distilled_sibling(card)
    if sibling is None or mode not in sibling.modes:
        return None, ""
    if card.is_tiny or is_downloaded(sibling):
        return sibling, ""
    return None, f"`openreel models pull {sibling.id}` for a faster draft on its distilled checkpoint"
