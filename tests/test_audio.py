"""Sound in the MP4: LTX-2's twin makes a track as long as its video; a tone burst placed at a known
instant is found at that instant after a re-cut, an extension (forwards, backwards, at another fps)
and a loop; --no-audio and silent models write no track; the manifest describes the track and the
watermark survives the sound being re-encoded. Everything is measured with PyAV on the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from openreel.cli import app

runner = CliRunner()

AAC_FRAME_SECONDS = 1024 / 48_000
BURST_AT = 0.75  # seconds into the source clip
# A burst is 20 ms of 1 kHz at 0.8; its onset is found within this (AAC smears a few ms).
ONSET_TOLERANCE = 0.006
W, H, FPS = 160, 96, 24


def cli(*args: str) -> None:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


def streams(path: Path) -> dict[str, tuple[str, float]]:
    """Each stream's codec and duration in seconds, as the file states them."""
    import av

    with av.open(str(path)) as container:
        return {
            stream.type: (stream.codec_context.name, float(stream.duration * stream.time_base))
            for stream in container.streams
        }


def decoded(path: Path, *, stereo: bool = False) -> tuple[np.ndarray, int]:
    """The file's first audio track decoded as it plays (the left channel, or both), and its rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [frame.to_ndarray() for frame in container.decode(stream)]
        samples = np.concatenate(chunks, axis=1)
        return (samples if stereo else samples[0]), stream.codec_context.sample_rate


def onset(path: Path, threshold: float = 0.3, after: float = 0.0) -> float:
    """When the sound first gets loud (the burst), searching from ``after`` seconds."""
    samples, rate = decoded(path)
    skip = round(after * rate)
    loud = np.flatnonzero(np.abs(samples[skip:]) > threshold)
    assert loud.size, "no burst in the file's sound"
    return (skip + loud[0]) / rate


def natural_frames(n: int) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:H, 0:W]
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        image = np.stack([xx * 1.5 + i, yy * 2.0, (xx + yy) * 0.8], -1) + rng.normal(0, 6, (H, W, 3))
        out.append(np.clip(image, 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def burst_clip(tmp_path_factory) -> Path:
    """2 s at 24 fps whose sound is silence but for a tone burst at BURST_AT, written through
    openreel's own writer (a 24 kHz waveform, as LTX-2's vocoder makes, resampled to 48 kHz)."""
    from openreel.render.audio import Audio
    from openreel.render.encode import VideoWriter

    rate = 24_000
    t = np.arange(2 * rate) / rate
    wave = np.zeros((2, t.size), np.float32)
    burst = (t >= BURST_AT) & (t < BURST_AT + 0.02)
    wave[:, burst] = 0.8 * np.sin(2 * np.pi * 1000 * t[burst])
    path = tmp_path_factory.mktemp("burst") / "burst.mp4"
    with VideoWriter(path, width=W, height=H, fps=FPS, audio=True) as writer:
        for frame in natural_frames(2 * FPS):
            writer.write(frame)
        writer.audio = Audio(wave, rate)
    return path


def test_writer_places_the_burst_at_its_time(burst_clip):
    kinds = streams(burst_clip)
    assert kinds["audio"][0] == "aac"
    assert abs(kinds["audio"][1] - kinds["video"][1]) <= AAC_FRAME_SECONDS
    assert abs(onset(burst_clip) - BURST_AT) <= ONSET_TOLERANCE


@pytest.fixture(scope="module")
def ltx2_clip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ltx2") / "drums.mp4"
    cli("generate", "a drummer in a jazz club", "--model", "tiny-ltx-2", "--seconds", "1",
        "--size", "128x64", "--steps", "2", "--seed", "3", "--output", str(out), "-q")  # fmt: skip
    return out


def test_ltx2_twin_makes_an_aac_track_as_long_as_its_video(ltx2_clip):
    kinds = streams(ltx2_clip)
    assert kinds["audio"][0] == "aac" and kinds["video"][0] == "h264"
    assert abs(kinds["video"][1] - 1.0) < 1e-9
    assert abs(kinds["audio"][1] - kinds["video"][1]) <= AAC_FRAME_SECONDS
    samples, rate = decoded(ltx2_clip)
    assert rate == 48_000
    # The vocoder's sound reached the file (a silent track would be the writer's fallback).
    assert np.sqrt(np.mean(samples**2)) > 1e-3


def test_ltx2_sound_is_the_pipelines_in_sync(ltx2_clip):
    """The file's track is the waveform the bare LTX2Pipeline makes for the same call, at the same
    instants: its cross-correlation with it peaks at lag 0."""
    import torch

    from openreel.models.catalog import get_card
    from openreel.models.families import ltx2
    from openreel.models.weights import weights_folder
    from openreel.render.audio import Audio

    card = get_card("tiny-ltx-2")
    pipe = ltx2.load_pipeline(weights_folder(card), card, "t2v", torch.float32)
    pipe.set_progress_bar_config(disable=True)
    made = pipe(
        prompt="a drummer in a jazz club",
        height=64,
        width=128,
        num_frames=25,
        frame_rate=24,
        num_inference_steps=2,
        guidance_scale=card.default_guidance,
        spatio_temporal_guidance_blocks=[1],
        generator=torch.Generator().manual_seed(3),
        output_type="np",
    )
    bare = Audio.from_pipeline(made.audio[0], pipe.vocoder.config.output_sampling_rate).resampled(48_000)
    # Both channels in one signal: AAC codes the pair jointly, so one quiet channel alone is noisy.
    ours = decoded(ltx2_clip, stereo=True)[0][:, :48_000].ravel()
    reference = bare.samples[:, :48_000].ravel()
    lags = range(-240, 241)
    score = [float(np.dot(np.roll(ours, lag), reference)) for lag in lags]
    assert abs(list(lags)[int(np.argmax(score))]) <= 2
    assert np.corrcoef(ours, reference)[0, 1] > 0.9


def test_no_audio_writes_no_track_and_silent_models_stay_silent(tmp_path):
    quiet = tmp_path / "quiet.mp4"
    cli("generate", "drums", "--model", "tiny-ltx-2", "--seconds", "0.5", "--size", "128x64",
        "--steps", "2", "--no-audio", "--output", str(quiet), "-q")  # fmt: skip
    assert set(streams(quiet)) == {"video"}
    silent = tmp_path / "silent.mp4"
    cli("generate", "a boat", "--model", "tiny-ltx", "--seconds", "0.5", "--size", "128x64",
        "--steps", "2", "--output", str(silent), "-q")  # fmt: skip
    assert set(streams(silent)) == {"video"}
    result = runner.invoke(app, ["generate", "a boat", "--model", "tiny-ltx", "--audio", "--dry-run"])
    assert result.exit_code != 0 and "tiny-ltx makes no sound" in result.output and "ltx-2" in result.output


def test_manifest_describes_the_track(ltx2_clip):
    from openreel.provenance import verify

    report = verify(ltx2_clip)
    assert report.manifest.valid
    audio = report.manifest.claims["audio"]
    assert audio["codec"] == "aac" and audio["sample_rate"] == 48_000 and audio["channels"] == 2
    assert abs(audio["seconds"] - 1.0) <= AAC_FRAME_SECONDS


def test_recut_cuts_the_sound_at_the_same_instants(burst_clip, tmp_path):
    from openreel.render.edit import recut

    out = recut(burst_clip, tmp_path / "cut.mp4", start=0.25, end=1.5)
    kinds = streams(out)
    assert abs(kinds["video"][1] - 1.25) < 1e-9
    assert abs(kinds["audio"][1] - kinds["video"][1]) <= AAC_FRAME_SECONDS
    assert abs(onset(out) - (BURST_AT - 0.25)) <= ONSET_TOLERANCE


def test_reencoded_sound_keeps_the_watermark_and_the_manifest_covers_it(tmp_path):
    """A watermarked, signed clip with sound, re-cut (its sound decoded and encoded again): the
    frames' mark still reads, and the new manifest describes the re-encoded track."""
    from openreel import provenance
    from openreel.provenance.credits import Credits
    from openreel.render.audio import Audio
    from openreel.render.edit import recut
    from openreel.render.encode import VideoWriter

    payload = provenance.make_payload(provenance.installation_id(), "video_audio")
    path = tmp_path / "marked.mp4"
    with VideoWriter(path, width=320, height=192, fps=FPS, audio=True) as writer:
        for frame in provenance.watermark_frames(iter(_large_frames(24)), payload):
            writer.write(frame)
        writer.audio = Audio(np.full((2, 48_000), 0.1, np.float32), 48_000)
    provenance.sign_file(path, credits=Credits(model_id="tiny-ltx-2"), watermark=payload)
    out = recut(path, tmp_path / "cut.mp4", start=0.0, end=0.5)
    report = provenance.verify(out)
    assert report.watermark.found and report.watermark.payload == payload
    assert report.manifest.valid and report.manifest.claims["audio"]["codec"] == "aac"


def _large_frames(n: int) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:192, 0:320]
    rng = np.random.default_rng(2)
    return [
        np.clip(
            np.stack([xx * 0.8 + i, yy * 1.2, (xx + yy) * 0.4], -1) + rng.normal(0, 6, (192, 320, 3)), 0, 255
        ).astype(np.uint8)
        for i in range(n)
    ]


@pytest.mark.parametrize("backward", [False, True])
def test_extension_by_a_silent_model_keeps_the_clips_sound_in_place(burst_clip, tmp_path, backward):
    """tiny-ltx makes no sound: the clip's part keeps its sound, the new second is silent, and the
    burst is where it was in the clip (after the new second when extending backwards), also at
    another output fps (frames dropped and repeated; the sound is not moved)."""
    out = tmp_path / "longer.mp4"
    args = ["extend", str(burst_clip), "more", "--model", "tiny-ltx", "--seconds", "1", "--steps", "1",
            "--fps", "30", "--output", str(out), "-q"]  # fmt: skip
    cli(*args, *(["--backward"] if backward else []))
    kinds = streams(out)
    assert abs(kinds["video"][1] - 3.0) < 1e-9
    assert abs(kinds["audio"][1] - kinds["video"][1]) <= AAC_FRAME_SECONDS
    expected = BURST_AT + (1.0 if backward else 0.0)
    assert abs(onset(out) - expected) <= ONSET_TOLERANCE
    samples, rate = decoded(out)
    new_part = (
        samples[round(2.05 * rate) : round(2.95 * rate)] if not backward else samples[: round(0.95 * rate)]
    )
    assert np.max(np.abs(new_part)) < 0.01


def test_loop_plays_into_its_start_without_a_click(tmp_path):
    """A loop of a clip with a tone, made by a silent model: its sound is the clip's own, and no
    step larger than the tone's own is anywhere in it, the wrap from its end to its start and the
    seam where the bridge meets the clip's head included."""
    from openreel.render.audio import Audio
    from openreel.render.encode import VideoWriter

    rate = 48_000
    t = np.arange(2 * rate) / rate
    tone = np.tile((0.5 * np.sin(2 * np.pi * 220 * t + 0.7)).astype(np.float32), (2, 1))
    clip = tmp_path / "tone.mp4"
    with VideoWriter(clip, width=W, height=H, fps=FPS, audio=True) as writer:
        for frame in natural_frames(2 * FPS):
            writer.write(frame)
        writer.audio = Audio(tone, rate)
    out = tmp_path / "loop.mp4"
    cli("loop", str(clip), "round again", "--model", "tiny-ltx", "--steps", "2", "--output", str(out), "-q")
    kinds = streams(out)
    assert abs(kinds["audio"][1] - kinds["video"][1]) <= AAC_FRAME_SECONDS
    plan = json.loads(out.with_suffix(".json").read_text())["plan"]
    bridge, keep = plan["out_frames"] / plan["out_fps"], plan["source_frames"] / plan["out_fps"]
    samples, _ = decoded(out)
    samples = samples[: round(kinds["audio"][1] * rate)]
    # The loop is [bridge, the clip's head]: at loop time u the clip's own sound at keep + u in
    # the bridge, at u - bridge in the head. Both ends of the file are the clip at ``keep``, so
    # the wrap is the clip's own continuous tone.
    u = np.arange(samples.size) / rate
    clip_time = np.where(u < bridge, keep + u, u - bridge)
    expected = 0.5 * np.sin(2 * np.pi * 220 * clip_time + 0.7)
    # AAC's first and last frames ring. Where the bridge meets the head the clip's sound has run
    # out (its 2 s are all in the loop): the bridge fades out and the head in, over 5 ms each.
    edge = 1024
    lap = (u >= bridge - 0.007) & (u < bridge + 0.007)
    steady = ~lap
    steady[:edge] = steady[-edge:] = False
    assert np.max(np.abs(samples[steady] - expected[steady])) < 0.05
    # No click at the seam: no step larger than the tone's own (2 pi 220 x 0.5 / rate a sample).
    assert np.max(np.abs(np.diff(samples[lap]))) <= 2 * (2 * np.pi * 220 * 0.5 / rate)


def _tone_clip(path: Path, hertz: float) -> Path:
    from openreel.render.audio import Audio
    from openreel.render.encode import VideoWriter

    rate = 48_000
    t = np.arange(2 * rate) / rate
    with VideoWriter(path, width=W, height=H, fps=FPS, audio=True) as writer:
        for frame in natural_frames(2 * FPS):
            writer.write(frame)
        writer.audio = Audio(np.tile((0.4 * np.sin(2 * np.pi * hertz * t)).astype(np.float32), (2, 1)), rate)
    return path


def _level(samples: np.ndarray, rate: int, hertz: float) -> float:
    """The amplitude of one frequency in ``samples``."""
    t = np.arange(samples.size) / rate
    return 2 * abs(np.mean(samples * np.exp(-2j * np.pi * hertz * t)))


def test_blend_crossfades_the_two_clips_sounds(tmp_path):
    """Clip a hums at 220 Hz, clip b at 880 Hz: the blend opens on a's sound and closes on b's."""
    a, b = _tone_clip(tmp_path / "a.mp4", 220), _tone_clip(tmp_path / "b.mp4", 880)
    out = tmp_path / "blend.mp4"
    cli("blend", str(a), str(b), "one into the other", "--model", "tiny-ltx", "--steps", "2",
        "--seconds", "2", "--output", str(out), "-q")  # fmt: skip
    kinds = streams(out)
    assert abs(kinds["audio"][1] - kinds["video"][1]) <= AAC_FRAME_SECONDS
    samples, rate = decoded(out)
    head, tail = samples[1024 : 1024 + rate // 5], samples[-rate // 5 - 1024 : -1024]
    assert _level(head, rate, 220) > 0.3 and _level(head, rate, 880) < 0.05
    assert _level(tail, rate, 880) > 0.3 and _level(tail, rate, 220) < 0.05


def test_a_local_ltx2_folder_is_read_as_ltx2_with_sound(ltx2_clip):
    from openreel.models.catalog import get_card
    from openreel.models.weights import card_for_folder, weights_folder

    card = card_for_folder(weights_folder(get_card("tiny-ltx-2")))
    assert card.family == "ltx2" and card.makes_audio


@pytest.mark.parametrize("backward", [False, True])
def test_ltx2_extension_continues_the_clips_sound(burst_clip, tmp_path, backward):
    """LTX-2 extends a clip with sound: the clip's part keeps its own (the burst where it was),
    the new second has the model's, and the track is as long as the video."""
    out = tmp_path / "longer.mp4"
    args = ["extend", str(burst_clip), "more", "--model", "tiny-ltx-2", "--seconds", "1", "--steps", "2",
            "--size", f"{W}x{H}", "--output", str(out), "-q"]  # fmt: skip
    cli(*args, *(["--backward"] if backward else []))
    kinds = streams(out)
    assert abs(kinds["video"][1] - 3.0) < 1e-9
    assert abs(kinds["audio"][1] - kinds["video"][1]) <= AAC_FRAME_SECONDS
    # Backwards, the model's sound runs on over the clip's first frames (the ones the new second
    # ends on), crossfading into the clip's: the burst is looked for after that.
    plan = json.loads(out.with_suffix(".json").read_text())["plan"]
    after = 1.0 + plan["trailing"] / plan["native_fps"] if backward else 0.0
    assert after < BURST_AT + 1.0
    assert abs(onset(out, after=after) - (BURST_AT + (1.0 if backward else 0.0))) <= ONSET_TOLERANCE
    samples, rate = decoded(out)
    new_part = (
        samples[round(2.1 * rate) : round(2.9 * rate)] if not backward else samples[: round(0.6 * rate)]
    )
    assert np.sqrt(np.mean(new_part**2)) > 1e-3
    # Across the clip's frames the model was given, its sound fades in over the clip's (silent
    # there, but for the burst): the new sound starts before the join, not at it.
    given = plan["trailing"] if backward else plan["windows"][0]["overlap"]
    span = given / plan["native_fps"]
    if backward:
        lap = samples[round(1.01 * rate) : round((1.0 + span / 2) * rate)]
    else:
        lap = samples[round((2.0 - span / 2) * rate) : round(1.99 * rate)]
    assert span > 0.1 and np.sqrt(np.mean(lap**2)) > 1e-3


def test_audio_must_be_true_or_false():
    from openreel.errors import SpecError
    from openreel.spec import VideoSpec

    with pytest.raises(SpecError, match="audio must be true or false"):
        VideoSpec(prompt="drums", audio="yes").validated()
    assert VideoSpec(prompt="drums").validated().audio is None


def test_a_resumed_ltx2_run_keeps_its_sound(ltx2_clip, tmp_path, monkeypatch):
    """A run that stops after the model made its frames and sound (here: writing the file fails)
    is finished from the saved latents with the same sound, not a silent track."""
    from openreel.engine import Engine
    from openreel.spec import VideoSpec

    spec = VideoSpec(
        "a drummer in a jazz club", model="tiny-ltx-2", seconds=1, width=128, height=64, steps=2, seed=3
    )
    output = tmp_path / "drums.mp4"

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    from openreel.render.encode import VideoWriter

    with monkeypatch.context() as patch:
        patch.setattr(VideoWriter, "close", disk_full)  # after every frame and the sound were made
        with pytest.raises(OSError):
            Engine().generate(spec, output)
    latents = tmp_path / "drums.latents.pt"
    assert latents.is_file() and not output.exists()

    Engine().resume(latents)
    resumed, rate = decoded(output)
    original, _ = decoded(ltx2_clip)
    assert rate == 48_000 and np.sqrt(np.mean(resumed**2)) > 1e-3  # not the silent fallback
    n = min(len(resumed), len(original))
    assert np.corrcoef(resumed[:n], original[:n])[0, 1] > 0.9  # the very sound of the first run
