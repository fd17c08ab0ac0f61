"""The watermark's code word: a keyed, authenticated payload anyone can find but only the key reads.

The 8-byte payload (which installation, which video) never travels in the clear:

- it is encrypted with a 64-bit block cipher keyed by the installation's watermark secret
  (a four-round Feistel network whose round function is HMAC-SHA256: a pseudo-random
  permutation, so two videos' code words say nothing about how their payloads relate);
- a 32-bit HMAC tag over the ciphertext follows, so a payload made without the key, or altered,
  fails to verify (one chance in 2**32 per attempt);
- a CRC-8 over both tells a damaged read ("mark present, payload unreadable") from one that
  reads cleanly but belongs to another key ("made by another installation, or forged").

Bits on the frame: ciphertext (64) + tag (32) + CRC (8) = 104.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import numpy as np

PAYLOAD_BYTES = 8
TAG_BYTES = 4
CODE_BYTES = PAYLOAD_BYTES + TAG_BYTES + 1
CODE_BITS = CODE_BYTES * 8
_ROUNDS = 4


def _round(key: bytes, index: int, half: bytes) -> bytes:
    return hmac.new(key, b"openreel-wm-round" + bytes([index]) + half, hashlib.sha256).digest()[:4]


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def encrypt(key: bytes, payload: bytes) -> bytes:
    left, right = payload[:4], payload[4:]
    for index in range(_ROUNDS):
        left, right = right, _xor(left, _round(key, index, right))
    return left + right


def decrypt(key: bytes, block: bytes) -> bytes:
    left, right = block[:4], block[4:]
    for index in reversed(range(_ROUNDS)):
        left, right = _xor(right, _round(key, index, left)), left
    return left + right


def _tag(key: bytes, ciphertext: bytes) -> bytes:
    return hmac.new(key, b"openreel-wm-tag" + ciphertext, hashlib.sha256).digest()[:TAG_BYTES]


def crc8(data: bytes) -> int:
    """CRC-8/ATM (polynomial x^8 + x^2 + x + 1)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def encode(key: bytes, payload: bytes) -> np.ndarray:
    """The 104 code bits (uint8 0/1) that carry ``payload`` under ``key``."""
    if len(payload) != PAYLOAD_BYTES:
        raise ValueError(f"watermark payload must be {PAYLOAD_BYTES} bytes, got {len(payload)}")
    if not key:
        raise ValueError("the watermark key is empty")
    ciphertext = encrypt(key, payload)
    body = ciphertext + _tag(key, ciphertext)
    return np.unpackbits(np.frombuffer(body + bytes([crc8(body)]), dtype=np.uint8))


@dataclass(frozen=True)
class Decoded:
    readable: bool  # the CRC checks: the bits were read without damage
    authentic: bool  # ... and the tag verifies under the key: made with this key
    payload: bytes | None  # only when authentic


# Soft decoding flips up to this many of this many least reliable bits, keeping a flip only when
# the tag then verifies: at most 1 + 10 + 45 + 120 = 176 tries, so a forgery's chance stays
# 176 / 2**32 (~4e-8).
_CHASE_BITS = 10
_CHASE_FLIPS = 3


def decode(key: bytes | None, bits: np.ndarray, reliability: np.ndarray | None = None) -> Decoded:
    """Read a code word. With ``reliability`` (one value per bit, larger = surer) and a key, the
    least reliable bits are also tried flipped, and a word counts only if its tag verifies."""
    from itertools import combinations

    bits = np.asarray(bits, dtype=np.uint8)[:CODE_BITS]
    first = _decode_hard(key, bits)
    if first.authentic or key is None or reliability is None:
        return first
    weakest = np.argsort(reliability[:CODE_BITS])[:_CHASE_BITS]
    for flips in range(1, _CHASE_FLIPS + 1):
        for chosen in combinations(weakest, flips):
            trial = bits.copy()
            trial[list(chosen)] ^= 1
            data = np.packbits(trial).tobytes()
            ciphertext, tag = data[:PAYLOAD_BYTES], data[PAYLOAD_BYTES:-1]
            if hmac.compare_digest(_tag(key, ciphertext), tag):
                return Decoded(True, True, decrypt(key, ciphertext))
    return first


def _decode_hard(key: bytes | None, bits: np.ndarray) -> Decoded:
    data = np.packbits(bits).tobytes()
    body, crc = data[:-1], data[-1]
    if crc8(body) != crc:
        return Decoded(False, False, None)
    ciphertext, tag = body[:PAYLOAD_BYTES], body[PAYLOAD_BYTES:]
    if key is None or not hmac.compare_digest(_tag(key, ciphertext), tag):
        return Decoded(True, False, None)
    return Decoded(True, True, decrypt(key, ciphertext))
