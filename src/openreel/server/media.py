"""Uploaded media checked by content at the door, before anything is stored or queued.

Images: bytes on the wire, the type by content (Pillow, not the file name), then the decoded size
from the header alone (pixels times channels times bit depth) against a budget, and only then a
full decode; so a 0.5 MB PNG that would decode to gigabytes is a 400 before any decoding starts.
Clips: a video container (not an image PyAV happens to read), with every frame its header
promises actually decodable (a truncated MP4 is a 400 now, not a failed job later).
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
from dataclasses import dataclass
from pathlib import Path

from openreel.server.protocol import ApiError, PayloadTooLarge

# What decoding an image may cost in memory: 64 MiB is a 4096x4096 RGBA image, far above any
# reference frame a video model uses.
DEFAULT_MAX_DECODED_BYTES = 64 * 2**20
# Containers a clip may come in (PyAV's format names); images and raw streams are not clips.
CLIP_FORMATS = ("mov", "mp4", "m4a", "3gp", "matroska", "webm", "avi")


IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}


@dataclass(frozen=True)
class ImageUpload:
    data: bytes
    format: str
    width: int
    height: int

    @property
    def suffix(self) -> str:
        return IMAGE_FORMATS[self.format]


def check_image(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    param: str = "input_reference",
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> ImageUpload:
    """Check an uploaded image by its content; raises 413 when too big, 400 when not a usable image."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"the image is {len(data)} bytes; the limit is {max_bytes} bytes",
            param=param,
            code="file_too_large",
        )
    if not data:
        raise ApiError("the image is empty", param=param, code="invalid_image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt, (width, height) = image.format or "", image.size
            if fmt not in IMAGE_FORMATS:
                raise ApiError(
                    f"input_reference must be a PNG, JPEG or WebP image (this is {fmt or 'unknown'})",
                    param=param,
                    code="invalid_image_format",
                )
            # The header tells the size; check it before decoding anything (decompression bombs).
            if width * height > max_pixels:
                raise ApiError(
                    f"the image is {width}x{height} ({width * height} pixels); "
                    f"the limit is {max_pixels} pixels",
                    param=param,
                    code="image_too_large",
                )
            check_decoded_size(data, image.mode, width, height, max_decoded_bytes, param)
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # verify() misses truncated pixel data; a full decode does not
    except ApiError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ApiError(
            f"input_reference is not a readable image ({exc})", param=param, code="invalid_image"
        ) from None
    return ImageUpload(data=data, format=fmt, width=width, height=height)


def decode_image_url(url: str) -> bytes:
    if not url.startswith("data:"):
        # Fetching arbitrary URLs from the server would let a client probe the server's network.
        raise ApiError(
            "input_reference.image_url must be a data URL (data:image/png;base64,...); "
            "this server fetches https URLs only when started with --fetch-image-urls",
            param="input_reference",
            code="invalid_image_url",
        )
    header, _, payload = url.partition(",")
    if ";base64" not in header:
        raise ApiError(
            "the data URL must be base64-encoded", param="input_reference", code="invalid_image_url"
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            "the data URL is not valid base64", param="input_reference", code="invalid_image_url"
        ) from None


def _bit_depth(data: bytes) -> int:
    """Bits per channel from a PNG's IHDR (16-bit PNGs cost twice the work); 8 for the others."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 25:
        return max(8, data[24])
    return 8


def check_decoded_size(data: bytes, mode: str, width: int, height: int, budget: int, param: str) -> None:
    """Refuse, from the header alone, an image whose decoding would cost more than ``budget`` bytes."""
    from PIL import Image

    channels = Image.getmodebands(mode)
    cost = width * height * max(channels, 1) * _bit_depth(data) // 8
    if cost > budget:
        raise ApiError(
            f"the image is {width}x{height} and would take {cost // 2**20} MiB to decode; "
            f"the limit is {budget // 2**20} MiB",
            param=param,
            code="image_too_large",
        )


def image_header(data: bytes) -> tuple[str, str, int, int] | None:
    """(format, mode, width, height) from an image's header without decoding it; None if unreadable."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format or "", image.mode, image.width, image.height
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, struct.error):
        return None


def check_image_budget(data: bytes, *, max_pixels: int, max_decoded_bytes: int, param: str = "file") -> None:
    """The pixel and decoded-size limits alone, for routes that decode an image themselves."""
    header = image_header(data)
    if header is None:
        from PIL import Image

        try:  # Pillow's own bomb guard refuses the largest images at open: that is a 400 too
            Image.open(io.BytesIO(data)).close()
        except Image.DecompressionBombError:
            raise ApiError("the image has too many pixels", param=param, code="image_too_large") from None
        except Exception:  # not an image Pillow knows: the route says what it makes of it
            return
        return
    _fmt, mode, width, height = header
    if width * height > max_pixels:
        raise ApiError(
            f"the image is {width}x{height}; the limit is {max_pixels} pixels",
            param=param,
            code="image_too_large",
        )
    check_decoded_size(data, mode, width, height, max_decoded_bytes, param)


def check_clip(path: Path, *, max_pixels: int, param: str = "video") -> None:
    """A clip is a video container whose frames all decode, within the pixel limit per frame."""
    import av

    try:
        with av.open(str(path)) as container:
            names = set((container.format.name or "").split(","))
            if not names & set(CLIP_FORMATS) or not container.streams.video:
                raise ApiError(
                    "the upload is not a video (MP4, MOV, WebM or MKV)", param=param, code="invalid_video"
                )
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > max_pixels:
                raise ApiError(
                    f"the video is {width}x{height}; the limit is {max_pixels} pixels a frame",
                    param=param,
                    code="video_too_large",
                )
            promised = stream.frames
            decoded = sum(1 for _ in container.decode(stream))
    except av.error.FFmpegError:
        raise ApiError("the uploaded video cannot be decoded", param=param, code="invalid_video") from None
    if decoded == 0 or (promised and decoded < promised):
        raise ApiError(
            f"the uploaded video is truncated: {decoded} of {promised or '?'} frames decode",
            param=param,
            code="invalid_video",
        )


def as_webp(path: Path) -> Path | None:
    """A WebP copy of a JPEG preview beside it (made once, atomically), which is what OpenAI's
    spec lists for thumbnails and spritesheets; None if the file is not an image Pillow reads."""
    from PIL import Image, UnidentifiedImageError

    target = path.with_suffix(".webp")
    if target.is_file():
        return target
    try:
        with Image.open(path) as image:
            buffer = io.BytesIO()
            image.save(buffer, format="WEBP", quality=90)
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    from openreel.server.openai_videos import write_atomically

    write_atomically(target, buffer.getvalue())
    return target


def _public_addresses(host: str, port: int) -> None:
    """Refuse a host that resolves to any private, loopback, link-local or reserved address (a
    request could otherwise reach the server's own network: SSRF)."""
    import ipaddress
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise ApiError(f"cannot resolve {host}", param="input_reference", code="invalid_image_url") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise ApiError(
                f"{host} is a private or local address; this server fetches only public ones",
                param="input_reference",
                code="invalid_image_url",
            )


def fetch_image_url(url: str, *, max_bytes: int, timeout_s: float, allow_private: bool) -> bytes:
    """An https image URL's bytes, opt-in (``--fetch-image-urls``): public addresses only unless
    ``allow_private`` (which also allows http), no redirects, at most ``max_bytes``, within
    ``timeout_s`` in all."""
    import time
    from urllib.parse import urlsplit

    import httpx

    parts = urlsplit(url)
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise ApiError(
            "input_reference.image_url must be an https URL",
            param="input_reference",
            code="invalid_image_url",
        )
    if not allow_private:
        _public_addresses(parts.hostname, parts.port or 443)
    deadline = time.monotonic() + timeout_s
    chunks, size = [], 0
    try:
        with httpx.stream("GET", url, timeout=timeout_s, follow_redirects=False) as response:
            if response.status_code != 200:
                raise ApiError(
                    f"fetching the image answered {response.status_code}",
                    param="input_reference",
                    code="invalid_image_url",
                )
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(
                        f"the image at the URL is over {max_bytes} bytes",
                        param="input_reference",
                        code="file_too_large",
                    )
                if time.monotonic() > deadline:
                    raise ApiError(
                        "fetching the image took too long", param="input_reference", code="invalid_image_url"
                    )
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise ApiError(
            f"could not fetch the image ({type(exc).__name__})",
            param="input_reference",
            code="invalid_image_url",
        ) from None
    return b"".join(chunks)
