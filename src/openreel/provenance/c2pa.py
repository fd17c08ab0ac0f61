"""C2PA manifests: sign openreel's outputs in place, and read them back.

Signing writes the signed copy to a temporary file beside the output and renames it over the
output only when whole (c2pa writes the destination before it knows signing will succeed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openreel.atomic import atomic_path
from openreel.errors import OpenreelError
from openreel.provenance.credits import Credits

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
CREDITS_LABEL = "org.openreel.credits"
PROMPT_LABEL = "org.openreel.prompt"
VISIBLE_LABEL = "org.openreel.visible-label"
# The sound track of a video: what it is (codec, rate, channels, length). The manifest's hard
# binding already hashes every byte of the file, the audio samples too: this says it is there.
AUDIO_LABEL = "org.openreel.audio"
PROMPT_ENV = "OPENREEL_MANIFEST_PROMPT"
SOFT_BINDING_LABEL = "c2pa.soft-binding"
SOFT_BINDING_ALG = "org.openreel.watermark.2"

MIME_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}

# Certificate problems say who signed, not whether the file changed: they make a manifest
# untrusted (or invalid), never "tampered".
_TRUST_CODE_PREFIXES = ("signingCredential.", "timeStamp.")


class SigningError(OpenreelError):
    code = "signing_failed"
    status = 500


def mime_type(path: Path) -> str:
    try:
        return MIME_TYPES[path.suffix.lower()]
    except KeyError:
        raise SigningError(
            f"cannot sign {path.name}: C2PA signing supports {', '.join(sorted(MIME_TYPES))}"
        ) from None


def prompt_enabled() -> bool:
    """The prompt goes into manifests only when the owner opts in: a prompt can be private."""
    return os.environ.get(PROMPT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def build_manifest(
    title: str, credits: Credits, *, action: str, parent_labels: Sequence[str], prompt: str | None
) -> dict[str, Any]:
    software = {"name": "openreel", "version": credits.openreel_version}
    parameters: dict[str, Any] = {
        "model": credits.model_id,
        "model_revision": credits.model_revision,
        "model_licence": credits.model_licence,
    }
    if credits.style_id is not None:
        parameters["style"] = credits.style_id
        parameters["style_author"] = credits.style_author
    parameters = {k: v for k, v in parameters.items() if v is not None}
    generate = {"digitalSourceType": TRAINED_ALGORITHMIC_MEDIA, "softwareAgent": software}
    if action == "c2pa.created":
        if parent_labels:
            raise ValueError("a c2pa.created output has no parents; use action='c2pa.edited'")
        actions = [{"action": "c2pa.created", **generate, "parameters": parameters}]
    elif action == "c2pa.edited":
        if not parent_labels:
            raise ValueError("a c2pa.edited output needs its parents")
        # C2PA wants the first action to be created or opened: open the first parent, then the
        # model's edit, which names every parent it drew on.
        actions = [
            {"action": "c2pa.opened", "parameters": {"ingredientIds": [parent_labels[0]]}},
            {
                "action": "c2pa.edited",
                **generate,
                "parameters": {**parameters, "ingredientIds": list(parent_labels)},
            },
        ]
    else:
        raise ValueError(f"unsupported action {action!r}: use c2pa.created or c2pa.edited")
    assertions: list[dict[str, Any]] = [
        {"label": "c2pa.actions", "data": {"actions": actions}},
        {"label": CREDITS_LABEL, "data": credits.to_dict()},
    ]
    if prompt is not None:
        assertions.append({"label": PROMPT_LABEL, "data": {"prompt": prompt}})
    return {
        "claim_generator_info": [software],
        "title": title,
        "assertions": assertions,
    }


def _context(*, anchors: str | None, signer: Any | None = None) -> Any:
    import c2pa

    config: dict[str, Any] = {"verify": {"verify_trust": True}}
    if anchors:
        config["trust"] = {"trust_anchors": anchors}
    return c2pa.Context.from_dict(config, signer=signer)


def sign_file(
    path: Path,
    *,
    credits: Credits,
    action: str = "c2pa.created",
    parents: Sequence[Path] = (),
    prompt: str | None = None,
    identity: Any | None = None,
    watermark: bytes | None = None,
    label: dict[str, Any] | None = None,
) -> None:
    """Sign ``path`` in place with a C2PA manifest. ``prompt`` is embedded only if the owner
    turned that on (``OPENREEL_MANIFEST_PROMPT=1``). ``identity`` defaults to
    ``keys.signing_identity()``.

    The file's watermark payload (``watermark``, else read from the file with this installation's
    key; ``b""``: the file carries none, nothing is read) goes into a soft-binding assertion, and
    the manifest is filed under it in the ledger, so a copy stripped of its manifest still finds
    it (``verify``). ``label``: the visible label laid on the frames (``provenance.label``)."""
    import c2pa

    from openreel.provenance import keys, ledger

    path = Path(path)
    fmt = mime_type(path)
    identity = identity or keys.signing_identity()
    labels = [f"parent{i}" for i in range(len(parents))]
    manifest = build_manifest(
        path.name, credits, action=action, parent_labels=labels, prompt=prompt if prompt_enabled() else None
    )
    if watermark is None:
        watermark = _own_mark(path)
    if watermark:
        manifest["assertions"].append(soft_binding(watermark))
    if label is not None:
        manifest["assertions"].append({"label": VISIBLE_LABEL, "data": label})
    audio = audio_track(path) if fmt in ("video/mp4", "video/quicktime") else None
    if audio is not None:
        manifest["assertions"].append({"label": AUDIO_LABEL, "data": audio})
    try:
        signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(identity.algorithm, identity.chain_pem, identity.key_pem, None)
        )
        # A context with our anchors, so parents signed here are checked as trusted ingredients.
        with (
            _context(anchors=keys.trust_anchors_pem()) as ctx,
            c2pa.Builder(manifest, context=ctx) as builder,
        ):
            for i, (parent, label) in enumerate(zip(parents, labels, strict=True)):
                parent = Path(parent)
                relationship = "parentOf" if i == 0 else "componentOf"
                with open(parent, "rb") as fh:
                    builder.add_ingredient(
                        {"title": parent.name, "relationship": relationship, "label": label},
                        mime_type(parent),
                        fh,
                    )
            with atomic_path(path) as tmp, open(path, "rb") as src, open(tmp, "w+b") as dst:
                builder.sign(signer, fmt, src, dst)
    except c2pa.C2paError as exc:
        raise SigningError(f"signing {path.name} failed: {exc}") from None
    except OSError as exc:
        raise SigningError(f"signing {path.name} failed: {exc}") from None
    if watermark:
        ledger.record(watermark, file=path.name, manifest=manifest, signer=identity.source)


def soft_binding(payload: bytes) -> dict[str, Any]:
    """The C2PA soft-binding assertion for a file carrying ``payload``: the algorithm, and as
    value the code word the frames carry (encrypted: it names the video only to the key's holder)."""
    import base64

    import numpy as np

    from openreel.provenance import keys, markcode

    code = np.packbits(markcode.encode(keys.watermark_key(), payload)).tobytes()
    return {
        "label": SOFT_BINDING_LABEL,
        "data": {
            "alg": SOFT_BINDING_ALG,
            "blocks": [{"scope": {}, "value": base64.b64encode(code).decode()}],
        },
    }


def audio_track(path: Path) -> dict[str, Any] | None:
    """The file's sound track as the manifest describes it, or None for a silent video."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        context = stream.codec_context
        seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        return {
            "codec": context.name,
            "sample_rate": context.sample_rate,
            "channels": context.channels,
            "seconds": round(seconds, 4) if seconds is not None else None,
            # The hard binding covers the samples: changing the sound invalidates the manifest.
            "bound": True,
        }


# Reading the mark back before signing costs a decode; two seconds of video say all there is.
_SIGNING_READ_FRAMES = 48


def _own_mark(path: Path) -> bytes | None:
    """The payload of this installation's mark in ``path``, if it carries one."""
    from openreel.provenance.verify import read_watermark

    try:
        result = read_watermark(path, max_frames=_SIGNING_READ_FRAMES)
    except Exception:  # noqa: BLE001 - a file we cannot read for the mark is still signed
        return None
    return result.payload if result.authentic else None


@dataclass
class ManifestReport:
    present: bool
    valid: bool = False  # the signature checks and nothing it covers has changed
    trusted: bool = False  # ... and the signer chains to a trust anchor
    tampered: bool = False  # the file or the manifest changed after signing
    state: str | None = None  # c2pa's validation state: Valid, Trusted or Invalid
    failures: list[str] = field(default_factory=list)
    signer: dict[str, Any] | None = None
    claims: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "valid": self.valid,
            "trusted": self.trusted,
            "tampered": self.tampered,
            "state": self.state,
            "failures": self.failures,
            "signer": self.signer,
            "claims": self.claims,
            "error": self.error,
        }


def read_manifest(path: Path, *, anchors: str | None = None) -> ManifestReport:
    """Read and validate the manifest in ``path`` against ``anchors`` (default: this
    installation's trust anchors)."""
    import c2pa

    from openreel.provenance import keys

    path = Path(path)
    if anchors is None:
        anchors = keys.trust_anchors_pem()
    try:
        with _context(anchors=anchors) as ctx, c2pa.Reader(path, context=ctx) as reader:
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
            manifest = reader.get_active_manifest() or {}
    except c2pa.C2paError.ManifestNotFound:
        return ManifestReport(present=False)
    except c2pa.C2paError.NotSupported as exc:
        return ManifestReport(present=False, error=f"format not supported: {exc}")
    except c2pa.C2paError as exc:
        # Something C2PA-shaped is there but cannot be parsed: the manifest itself was damaged.
        return ManifestReport(present=True, tampered=True, state="Invalid", error=str(exc))
    failures = [item["code"] for item in (results.get("activeManifest") or {}).get("failure", [])]
    tampered = any(not code.startswith(_TRUST_CODE_PREFIXES) for code in failures)
    return ManifestReport(
        present=True,
        valid=state in ("Valid", "Trusted") and not tampered,
        trusted=state == "Trusted",
        tampered=tampered,
        state=state,
        failures=failures,
        signer=manifest.get("signature_info"),
        claims=_claims(manifest),
    )


def _claims(manifest: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "title": manifest.get("title"),
        "generator": manifest.get("claim_generator_info"),
        "actions": [],
        "ingredients": [
            {"title": i.get("title"), "relationship": i.get("relationship")}
            for i in manifest.get("ingredients", [])
        ],
    }
    for assertion in manifest.get("assertions", []):
        label, data = assertion.get("label", ""), assertion.get("data") or {}
        if label.startswith("c2pa.actions"):
            for act in data.get("actions", []):
                # Ingredient references are hashed JUMBF links: noise for a person reading claims.
                params = {k: v for k, v in (act.get("parameters") or {}).items() if k not in ("ingredients",)}
                claims["actions"].append({**act, "parameters": params})
        elif label == CREDITS_LABEL:
            claims["credits"] = data
        elif label == PROMPT_LABEL:
            claims["prompt"] = data.get("prompt")
        elif label == SOFT_BINDING_LABEL:
            claims["soft_binding"] = data
        elif label == VISIBLE_LABEL:
            claims["visible_label"] = data
        elif label == AUDIO_LABEL:
            claims["audio"] = data
    return claims
