"""C2PA signing and verification of every output kind, trust, tampering, and the owner's own cert."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openreel import provenance
from openreel.provenance import c2pa, keys
from openreel.provenance.credits import Credits, LoraCredit

CREDITS = Credits(
    model_id="wan2.1-t2v-1.3b",
    model_revision="0123abcd",
    model_licence="Apache-2.0",
    model_authors=("Wan Team, Alibaba",),
    style_id="cinematic",
    style_author="openreel",
    style_licence="CC0-1.0",
    loras=(LoraCredit("film-grain", author="someone", licence="CC-BY-4.0"),),
)
W, H = 320, 192


@pytest.fixture(autouse=True)
def plain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (keys.CERT_ENV, keys.KEY_ENV, keys.ANCHORS_ENV, c2pa.PROMPT_ENV):
        monkeypatch.delenv(name, raising=False)


def frames(n: int = 12) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:H, 0:W]
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        img = np.stack([xx * 1.5 + i, yy * 2.0, (xx + yy) * 0.8], axis=-1) + rng.normal(0, 6, (H, W, 3))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def write_mp4(path: Path, payload: bytes | None = None) -> Path:
    import av

    source = frames()
    if payload is not None:
        source = list(provenance.watermark_frames(iter(source), payload))
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for frame in source:
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(
                format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG"
            )
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_image(path: Path, payload: bytes | None = None) -> Path:
    from PIL import Image

    frame = frames(1)[0]
    if payload is not None:
        frame = next(provenance.watermark_frames(iter([frame]), payload))
    Image.fromarray(frame).save(path, quality=95) if path.suffix == ".jpg" else Image.fromarray(frame).save(
        path
    )
    return path


@pytest.mark.parametrize("name", ["clip.mp4", "thumb.jpg", "still.png"])
def test_sign_and_verify_each_kind(tmp_path: Path, name: str) -> None:
    payload = provenance.make_payload(provenance.installation_id(), "video_abc")
    path = tmp_path / name
    (write_mp4 if name.endswith(".mp4") else write_image)(path, payload)
    provenance.sign_file(path, credits=CREDITS, prompt="a private prompt")
    report = provenance.verify(path)
    m = report.manifest
    assert (m.present, m.valid, m.trusted, m.tampered) == (True, True, True, False), m
    created = m.claims["actions"][0]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == c2pa.TRAINED_ALGORITHMIC_MEDIA
    assert created["softwareAgent"] == {
        "name": "openreel",
        "version": provenance.Credits("x").openreel_version,
    }
    assert created["parameters"]["model"] == "wan2.1-t2v-1.3b"
    assert created["parameters"]["style_author"] == "openreel"
    assert m.claims["credits"] == CREDITS.to_dict()
    assert "prompt" not in m.claims  # the owner did not opt in
    assert report.watermark.found and report.watermark.payload == payload
    assert provenance.payload_matches(report.watermark.payload, installation_id=provenance.installation_id())
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_prompt_only_when_owner_opts_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(c2pa.PROMPT_ENV, "1")
    path = write_image(tmp_path / "still.png")
    provenance.sign_file(path, credits=CREDITS, prompt="a paper boat on a rainy street")
    assert provenance.verify(path).manifest.claims["prompt"] == "a paper boat on a rainy street"


def test_edited_output_names_its_parents(tmp_path: Path) -> None:
    parent = write_mp4(tmp_path / "parent.mp4")
    provenance.sign_file(parent, credits=CREDITS)
    other = write_image(tmp_path / "reference.png")
    child = write_mp4(tmp_path / "remix.mp4")
    provenance.sign_file(child, credits=CREDITS, action="c2pa.edited", parents=[parent, other])
    m = provenance.verify(child).manifest
    assert m.valid and m.trusted
    assert [a["action"] for a in m.claims["actions"]] == ["c2pa.opened", "c2pa.edited"]
    assert m.claims["actions"][1]["digitalSourceType"] == c2pa.TRAINED_ALGORITHMIC_MEDIA
    assert m.claims["ingredients"] == [
        {"title": "parent.mp4", "relationship": "parentOf"},
        {"title": "reference.png", "relationship": "componentOf"},
    ]
    with pytest.raises(ValueError, match="needs its parents"):
        provenance.sign_file(child, credits=CREDITS, action="c2pa.edited")


@pytest.mark.parametrize("name", ["clip.mp4", "still.png"])
def test_flipped_byte_reads_tampered(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    (write_mp4 if name.endswith(".mp4") else write_image)(path)
    provenance.sign_file(path, credits=CREDITS)
    data = bytearray(path.read_bytes())
    data[-40] ^= 0x01  # the tail of the media data, away from the manifest
    path.write_bytes(bytes(data))
    m = provenance.verify(path).manifest
    assert m.present and m.tampered and not m.valid and not m.trusted
    assert m.failures


def _chain_files(folder: Path, name: str) -> tuple[Path, Path, Path]:
    ca, ca_key = keys.make_ca(f"{name} root")
    leaf, leaf_key = keys.make_leaf(ca, ca_key, f"{name} signer")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chain.pem").write_bytes(keys.cert_pem(leaf) + keys.cert_pem(ca))
    (folder / "key.pem").write_bytes(keys.key_pem(leaf_key))
    (folder / "root.pem").write_bytes(keys.cert_pem(ca))
    return folder / "chain.pem", folder / "key.pem", folder / "root.pem"


def test_unknown_ca_reads_untrusted_but_valid(tmp_path: Path) -> None:
    chain, key, _ = _chain_files(tmp_path / "stranger", "stranger")
    identity = keys.load_identity(chain, key)
    path = write_image(tmp_path / "still.png")
    c2pa.sign_file(path, credits=CREDITS, identity=identity)
    m = provenance.verify(path).manifest
    assert (m.present, m.valid, m.trusted, m.tampered) == (True, True, False, False)
    assert "signingCredential.untrusted" in m.failures


def test_owner_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chain, key, root = _chain_files(tmp_path / "owner", "studio")
    monkeypatch.setenv(keys.CERT_ENV, str(chain))
    monkeypatch.setenv(keys.KEY_ENV, str(key))
    assert keys.signing_identity().source == "owner"
    path = write_mp4(tmp_path / "clip.mp4")
    provenance.sign_file(path, credits=CREDITS)
    m = provenance.verify(path).manifest
    assert m.valid and m.trusted and m.signer and m.signer["common_name"] == "studio signer"
    # Another installation that only knows the root through OPENREEL_TRUST_ANCHORS trusts it too.
    monkeypatch.delenv(keys.CERT_ENV)
    monkeypatch.delenv(keys.KEY_ENV)
    assert not c2pa.read_manifest(path, anchors="").trusted
    monkeypatch.setenv(keys.ANCHORS_ENV, str(root))
    assert provenance.verify(path).manifest.trusted


def test_owner_key_mismatch_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chain, _, _ = _chain_files(tmp_path / "a", "a")
    _, other_key, _ = _chain_files(tmp_path / "b", "b")
    monkeypatch.setenv(keys.CERT_ENV, str(chain))
    monkeypatch.setenv(keys.KEY_ENV, str(other_key))
    with pytest.raises(keys.SigningKeyError, match="does not belong"):
        keys.signing_identity()
    monkeypatch.delenv(keys.KEY_ENV)
    with pytest.raises(keys.SigningKeyError, match="set both"):
        keys.signing_identity()


def test_failed_signing_leaves_the_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"not a png at all")
    with pytest.raises(c2pa.SigningError):
        provenance.sign_file(path, credits=CREDITS)
    assert path.read_bytes() == b"not a png at all"
    assert [p.name for p in tmp_path.iterdir()] == ["broken.png"]


def test_local_ca_made_once_and_private(openreel_home: Path) -> None:
    first = keys.signing_identity()
    assert first.source == "local" and keys.signing_identity() == first
    folder = openreel_home / "keys"
    assert (folder / keys.SIGNER_KEY).stat().st_mode & 0o077 == 0
    assert (folder / keys.CA_KEY).stat().st_mode & 0o077 == 0


def test_unsigned_and_reencoded_files(tmp_path: Path) -> None:
    payload = provenance.make_payload("elsewhere", "video_1")
    path = write_mp4(tmp_path / "clip.mp4", payload)  # never signed: like a re-encode by another tool
    report = provenance.verify(path)
    assert not report.manifest.present
    assert report.watermark.found and report.watermark.payload == payload
    assert "no C2PA manifest" in report.summary and "AI-generated mark present" in report.to_dict()["summary"]
    clean = provenance.verify(write_mp4(tmp_path / "clean.mp4"))
    assert not clean.manifest.present and not clean.watermark.found


def test_credits_round_trip() -> None:
    assert Credits.from_dict(CREDITS.to_dict()) == CREDITS


def test_payload_is_stable_and_eight_bytes(openreel_home: Path) -> None:
    inst = provenance.installation_id()
    assert inst == provenance.installation_id() == (openreel_home / "installation-id").read_text().strip()
    payload = provenance.make_payload(inst, "video_1")
    assert len(payload) == 8 and payload == provenance.make_payload(inst, "video_1")
    assert provenance.payload_matches(payload, installation_id=inst, video_id="video_1")
    assert not provenance.payload_matches(payload, installation_id=inst, video_id="video_2")


def test_stripped_copy_finds_its_manifest(tmp_path: Path) -> None:
    """Signing records the mark as a soft binding and files the manifest; a copy re-encoded
    without it (as a platform would) still leads back to it."""
    import av

    payload = provenance.make_payload(provenance.installation_id(), "video_stripped")
    path = write_mp4(tmp_path / "clip.mp4", payload)
    provenance.sign_file(path, credits=CREDITS)
    signed = provenance.verify(path)
    assert signed.manifest.claims["soft_binding"]["alg"] == c2pa.SOFT_BINDING_ALG
    copy = tmp_path / "copy.mp4"
    with av.open(str(path)) as src, av.open(str(copy), "w") as dst:
        stream = dst.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "20"}
        for frame in src.decode(video=0):
            for packet in stream.encode(frame):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    report = provenance.verify(copy)
    assert not report.manifest.present and report.watermark.payload == payload
    assert report.record and report.record[0]["file"] == "clip.mp4"
    assert "manifest on record: signed here on" in report.summary and "wan2.1-t2v-1.3b" in report.summary


def test_wrong_key_corrupt_and_tiny_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = provenance.make_payload(provenance.installation_id(), "video_k")
    path = write_mp4(tmp_path / "clip.mp4", payload)
    monkeypatch.setenv(keys.WATERMARK_KEY_ENV, "another installation's secret")
    other = provenance.verify(path)
    assert other.watermark.found and other.watermark.payload is None
    assert "does not verify with this installation's key" in other.summary
    monkeypatch.delenv(keys.WATERMARK_KEY_ENV)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(path.read_bytes()[:2000])
    report = provenance.verify(broken)
    assert not report.watermark.found and "cannot decode" in report.summary
    tiny = tmp_path / "tiny.png"
    from PIL import Image

    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tiny)
    assert "too small to carry a mark" in provenance.verify(tiny).summary
