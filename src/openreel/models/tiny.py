"""In-code parts for the twins (models/twins.py), without the hub: tokenizers with a small
vocabulary of video words (the real tokenizers' classes), and seeding.

``build_tiny_pipeline`` saves a twin in the diffusers layout, so ``load_pipeline`` reads it exactly
as it reads published weights. The output of a twin is noise.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

SEED = 0

# Words common in video prompts become single tokens; anything else is spelled out letter by
# letter (T5 pieces) or byte by byte (Llama), so every English prompt tokenizes.
_WORD_TEXT = """
    a an the and or of in on at to with from by for over under into through across near
    is are was while as it its this that his her their he she they one two three
    video scene shot camera close up wide slow motion cinematic light lights shadow shadows
    sun sunset sunrise night day sky cloud clouds rain snow fog water sea ocean river lake wave
    waves beach forest tree trees mountain mountains city street road car cars train bridge
    house room window door table chair man woman child people person dog cat bird birds fish
    horse dragon robot walking running flying dancing sitting standing looking playing
    red orange yellow green blue purple pink white black gold golden silver bright dark
    soft warm cold small large big old young beautiful quiet busy neon
    background foreground style film animation painting photo realistic detailed
    high quality low blurry static frame frames color colors
"""
WORDS = tuple(_WORD_TEXT.split())

# HunyuanVideo wraps every prompt in a Llama-3 chat template and crops the template's first 95
# tokens (its length in the real tokenizer). Spelled letter by letter, the template alone would fill
# the 351-token window and push the prompt out; with these words it takes ~120 tiny tokens, so the
# crop stays inside the template and the whole prompt reaches the text encoder.
_TEMPLATE_TEXT = """
    system user Describe describe by detailing following aspects main content and theme
    shape size texture quantity text spatial relationships objects Actions actions events
    behaviors temporal physical movement changes background environment light shadow
    camera angles movements transitions used
"""
TEMPLATE_WORDS = tuple(_TEMPLATE_TEXT.split())
# HunyuanVideo I2V's template adds these to the text-to-video one's.
I2V_TEMPLATE_WORDS = ("according", "reference", "image")
LLAMA_SPECIAL_TOKENS = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")


def build_tiny_pipeline(name: str, folder: Path) -> None:
    """Build the twin ``tiny-<name>`` (e.g. "wan", "wan-vace", "cogvideox1.5-5b") and save it to
    ``folder``."""
    from openreel.errors import UnknownModelError
    from openreel.models.catalog import TINY_CARDS, get_card
    from openreel.models.twins import build_twin

    try:
        twin = get_card(f"tiny-{name}")
    except UnknownModelError:
        known = ", ".join(card.id.removeprefix("tiny-") for card in TINY_CARDS)
        raise ValueError(f"no tiny build named {name!r}; known: {known}") from None
    Path(folder).mkdir(parents=True, exist_ok=True)
    build_twin(twin).save_pretrained(folder)


# --- text encoders and tokenizers -------------------------------------------------------------


def t5_tokenizer() -> Any:
    """A Unigram (sentencepiece-style) T5 tokenizer: whole words where known, else characters."""
    from transformers import T5Tokenizer

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    pieces += [(char, -8.0) for char in string.ascii_letters + string.digits + string.punctuation]
    pieces += [(f"▁{word}", -4.0) for word in WORDS]
    # extra_ids=0: the sentinel tokens only matter for T5's span-corruption training.
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def _bpe_vocab_and_merges(
    words: Iterable[str],
    prefix: str = "",
    suffix: str = "",
    base: Iterable[str] = (),
    alphabet: Iterable[str] = string.ascii_letters + string.digits + string.punctuation,
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A BPE vocabulary whose merges rebuild each word left to right from its characters.

    Every merge result is itself in the vocabulary, so any text still tokenizes: unknown words stay
    split into characters (or bytes, for byte-fallback tokenizers).
    """
    vocab: dict[str, int] = {}
    for token in base:
        vocab.setdefault(token, len(vocab))
    for char in [*alphabet, *prefix]:
        vocab.setdefault(char, len(vocab))
        if suffix:
            vocab.setdefault(char + suffix, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in words:
        symbols = list(prefix + word)
        if suffix:
            symbols[-1] += suffix
        left = symbols[0]
        for right in symbols[1:]:
            merged = left + right
            if merged not in vocab:
                vocab[merged] = len(vocab)
                merges.append((left, right))
            left = merged
    return vocab, merges


def llama_tokenizer(image: bool = False) -> Any:
    """A Llama-style byte-fallback BPE tokenizer (HunyuanVideo's first text encoder).

    ``image``: the LLaVA variant of HunyuanVideo I2V, whose template puts ``<image>`` at token 5
    (the pipeline's ``image_emb_start``) and expands it to the image features there. That needs
    the begin-of-text token, an ``<image>`` token and "system" (right after a header token, so
    without a leading space) as one token, as in Llama 3."""
    from transformers import LlamaTokenizer

    image_specials = ["<image>"] if image else []
    specials = ["<unk>", "<s>", "</s>", "<pad>", *LLAMA_SPECIAL_TOKENS, *image_specials]
    byte_tokens = [f"<0x{value:02X}>" for value in range(256)]
    words = sorted(set(WORDS) | set(TEMPLATE_WORDS) | (set(I2V_TEMPLATE_WORDS) if image else set()))
    vocab, merges = _bpe_vocab_and_merges(words, prefix="▁", base=[*specials, *byte_tokens, "\n"])
    if image:
        left = "s"
        for right in "ystem":
            vocab.setdefault(left + right, len(vocab))
            merges.append((left, right))
            left += right
    # "\n\n" is one token in Llama 3, as the template's line breaks are.
    vocab["\n\n"] = len(vocab)
    merges.append(("\n", "\n"))
    extra = {"bos_token": "<s>", "add_bos_token": True} if image else {}
    tokenizer = LlamaTokenizer(vocab=vocab, merges=merges, pad_token="<pad>", **extra)
    tokenizer.add_special_tokens({"additional_special_tokens": [*LLAMA_SPECIAL_TOKENS, *image_specials]})
    return tokenizer


def clip_tokenizer() -> Any:
    """A CLIP BPE tokenizer (HunyuanVideo's second text encoder): lower-case words end in </w>."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    # CLIP maps text to its 256-symbol byte alphabet first; with all of it in the vocabulary no
    # character is unknown. Sorted: the alphabet comes back in set order, which changes per process.
    vocab, merges = _bpe_vocab_and_merges(
        sorted({word.lower() for word in WORDS}),
        suffix="</w>",
        base=specials,
        alphabet=sorted(ByteLevel.alphabet()),
    )
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)  # CLIP's context length


# Qwen2's chat template, reduced to what the HunyuanVideo 1.5 pipeline uses: system and user turns,
# then the assistant's header (add_generation_prompt).
_QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def qwen2_tokenizer() -> Any:
    """A Qwen2 byte-level BPE tokenizer with its chat template (HunyuanVideo 1.5's first text
    encoder): words carry a leading "Ġ" for the space before them, as in GPT-2 style vocabularies."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import Qwen2Tokenizer

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    # The whole byte alphabet, sorted (set order changes per process): no character is unknown.
    vocab, merges = _bpe_vocab_and_merges(
        sorted(set(WORDS)), prefix="Ġ", base=specials, alphabet=sorted(ByteLevel.alphabet())
    )
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=_QWEN_CHAT_TEMPLATE,
    )


def byt5_tokenizer() -> Any:
    """ByT5's tokenizer (HunyuanVideo 1.5's glyph encoder): bytes, no vocabulary file to shrink."""
    from transformers import ByT5Tokenizer

    return ByT5Tokenizer()


def seeded() -> Any:
    """Seed torch's global generator before each part, so each part's weights depend only on
    its own constructor and the whole build is reproducible."""
    import torch

    torch.manual_seed(SEED)
    return torch
