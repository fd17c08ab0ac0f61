"""Draft quality's fastest path per family: what each family publishes for few-step runs.

- A distilled sibling checkpoint, named in ``options["draft_model"]`` (LTX-Video 13B dev ->
  13B distilled: 8 steps without classifier-free guidance, published by Lightricks for this).
  ``--quality draft`` runs the sibling when its weights are here (a twin's always are: it is built
  in code) and it can make the asked mode.
- A step- and guidance-distilled LoRA, named in ``options["draft_lora"]`` with the steps and
  guidance it was distilled for (Wan 2.1 T2V 14B -> lightx2v's 4-step LoRA, as diffusers' Wan docs
  use it). It is added to the run's LoRAs when the file is in the Hugging Face cache; a draft never
  downloads gigabytes on its own.

Otherwise the draft falls back to fewer steps and the block cache (render.caching.plan_cache) and says
what to fetch for a faster one.
"""

from __future__ import annotations

from typing import Any

from openreel.models.card import ModelCard

# spec.extra keys: the model a draft was asked of, when it runs on that model's distilled sibling;
# the step-distilled LoRA a draft runs with.
DRAFT_OF = "draft_of"
DRAFT_LORA = "draft_lora"


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


def draft_lora(card: ModelCard) -> tuple[dict[str, Any] | None, str]:
    """(the card's step-distilled LoRA as {source, path, scale, steps, guidance} when its file is
    in the Hugging Face cache, or None; a note saying how to fetch it when it is not)."""
    published = card.options.get("draft_lora")
    if not published:
        return None, ""
    from huggingface_hub import try_to_load_from_cache

    source = published["source"]
    repo, filename = "/".join(source.split("/")[:2]), "/".join(source.split("/")[2:])
    found = try_to_load_from_cache(repo, filename)
    if isinstance(found, str):
        return {**published, "path": found}, ""
    steps = published["steps"]
    return None, f"`hf download {repo} {filename}` for a {steps}-step draft with its distilled LoRA"
