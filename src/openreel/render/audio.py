"""Sound beside the frames: a model's waveform, a source clip's track, and how they are joined.

Sound lives on the video's time axis: sample ``k`` plays at ``k / rate`` seconds after the first
frame, whatever the frames' rate. Post-processing that keeps time (resizing, an fps change by
dropping, repeating or interpolating frames, which stamps frame ``i`` at ``i / fps``) needs
nothing done to the sound; cutting to an exact length cuts the sound to the same length
(``Audio.fit``). So sound and picture cannot drift apart: each is measured in seconds from the
same zero.

Pieces from different places (windows of a long clip, a source clip and its extension) are laid on
a ``Timeline`` at their start times: overlapping pieces crossfade across the overlap, an edge
that meets silence fades in or out over a few milliseconds, so no join clicks. The result is
written as AAC by the encoder (``render.encode.VideoWriter``), resampled to ``RATE``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

# What the MP4's AAC track is written at: 48 kHz stereo, the rate of video production and what
# every browser plays. (LTX-2's vocoder makes 24 kHz; it is resampled once, when written.)
RATE = 48_000
CHANNELS = 2
# One AAC frame: the encoder's unit, and the tolerance of the track's length against the video's.
AAC_FRAME = 1024
# A fade at an edge that meets silence: short enough to be inaudible, long enough to stop a click.
EDGE_FADE_SECONDS = 0.005


@dataclass(frozen=True)
class Audio:
    """A waveform: float32 samples shaped (channels, n) in [-1, 1] at ``rate`` Hz."""

    samples: np.ndarray
    rate: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 2 or self.samples.shape[0] not in (1, 2):
            raise ValueError(
                f"audio must be shaped (channels, samples) with 1 or 2 channels, got {self.samples.shape}"
            )
        if self.rate <= 0:
            raise ValueError(f"audio rate must be positive, got {self.rate}")

    @property
    def seconds(self) -> float:
        return self.samples.shape[1] / self.rate

    @classmethod
    def silence(cls, seconds: float, rate: int = RATE, channels: int = CHANNELS) -> Audio:
        return cls(np.zeros((channels, round(seconds * rate)), dtype=np.float32), rate)

    @classmethod
    def from_pipeline(cls, waveform: object, rate: int) -> Audio:
        """A pipeline's audio output for one video (a tensor or array (channels, n), or (n,))."""
        array = (
            waveform.detach().float().cpu().numpy() if hasattr(waveform, "detach") else np.asarray(waveform)
        )
        array = np.asarray(array, dtype=np.float32)
        if array.ndim == 1:
            array = array[None]
        return cls(np.clip(array, -1.0, 1.0), int(rate))

    def stereo(self) -> Audio:
        if self.samples.shape[0] == CHANNELS:
            return self
        return Audio(np.repeat(self.samples, CHANNELS, axis=0), self.rate)

    def resampled(self, rate: int) -> Audio:
        """At ``rate`` Hz (ffmpeg's resampler through PyAV), stereo; same duration."""
        audio = self.stereo()
        if rate == audio.rate:
            return audio
        return Audio(_resample(audio.samples, audio.rate, rate), rate)

    def between(self, start: float, end: float) -> Audio:
        """Seconds [start, end) of it (silence where it has none)."""
        first, stop = round(start * self.rate), round(end * self.rate)
        return self.fit_samples(stop)._slice(first, stop)

    def _slice(self, first: int, stop: int) -> Audio:
        return Audio(self.samples[:, first:stop].copy(), self.rate)

    def fit(self, seconds: float) -> Audio:
        """Exactly ``seconds`` long: cut at the end, or padded with silence."""
        return self.fit_samples(round(seconds * self.rate))

    def fit_samples(self, count: int) -> Audio:
        have = self.samples.shape[1]
        if have >= count:
            return Audio(self.samples[:, :count], self.rate)
        pad = np.zeros((self.samples.shape[0], count - have), dtype=np.float32)
        return Audio(np.concatenate([self.samples, pad], axis=1), self.rate)


def _resample(samples: np.ndarray, src_rate: int, rate: int) -> np.ndarray:
    import av

    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, dtype=np.float32), format="fltp", layout="stereo"
    )
    frame.sample_rate = src_rate
    frame.pts = 0
    frame.time_base = Fraction(1, src_rate)
    chunks = [out.to_ndarray() for out in resampler.resample(frame)]
    chunks += [out.to_ndarray() for out in resampler.resample(None)]
    out = np.concatenate(chunks, axis=1) if chunks else np.zeros((CHANNELS, 0), np.float32)
    # The resampler's filter delay leaves the count a few samples off: the duration is what counts.
    return Audio(out.astype(np.float32), rate).fit_samples(round(samples.shape[1] * rate / src_rate)).samples


@dataclass
class Timeline:
    """Pieces of sound placed at start times (seconds on the video's time axis), rendered into
    one track: overlaps crossfade, edges against silence fade. A Timeline with no pieces renders
    None: no sound track at all."""

    rate: int = RATE
    pieces: list[tuple[float, Audio]] = field(default_factory=list)

    def place(self, start: float, audio: Audio) -> None:
        self.pieces.append((start, audio.resampled(self.rate)))

    def __bool__(self) -> bool:
        return bool(self.pieces)

    def render(self, seconds: float, start: float = 0.0) -> Audio | None:
        """``seconds`` of the track from ``start`` (which may be before 0: the sound a model made
        over frames it was given, an extension's overlap, is there to crossfade with)."""
        if not self.pieces:
            return None
        total = round(seconds * self.rate)
        track = np.zeros((CHANNELS, total), dtype=np.float32)
        covered = np.zeros(total, dtype=bool)
        fade = max(1, round(EDGE_FADE_SECONDS * self.rate))
        for at, audio in sorted(self.pieces, key=lambda piece: piece[0]):
            first = round((at - start) * self.rate)
            samples = audio.samples
            lo, hi = max(first, 0), min(first + samples.shape[1], total)
            if hi <= lo:
                continue
            piece = samples[:, lo - first : hi - first].copy()
            gain = np.ones(hi - lo, dtype=np.float32)
            overlap = int(np.count_nonzero(covered[lo:hi]))
            # The part already covered (the tail of an earlier piece) crossfades into this one.
            if overlap:
                ramp = np.linspace(0.0, 1.0, overlap + 2, dtype=np.float32)[1:-1]
                head = covered[lo:hi]
                gain[head] = ramp
                track[:, lo + np.flatnonzero(head)] *= 1.0 - ramp
            elif lo > 0:
                n = min(fade, hi - lo)
                gain[:n] = np.linspace(0.0, 1.0, n + 1, dtype=np.float32)[1:]
                _fade_out_before(track, covered, lo, fade)
            if hi < total and not covered[hi]:
                n = min(fade, hi - lo)
                gain[hi - lo - n :] *= np.linspace(1.0, 0.0, n + 1, dtype=np.float32)[:-1]
            track[:, lo:hi] += piece * gain
            covered[lo:hi] = True
        return Audio(np.clip(track, -1.0, 1.0), self.rate)


def _fade_out_before(track: np.ndarray, covered: np.ndarray, at: int, fade: int) -> None:
    """An earlier piece that ends right where the next one starts fades out (no step)."""
    if at > 0 and covered[at - 1]:
        n = min(fade, at)
        track[:, at - n : at] *= np.linspace(1.0, 0.0, n + 1, dtype=np.float32)[:-1]


def loop_seam(audio: Audio, seconds: float = 0.02) -> Audio:
    """A track that plays on into its own start without a click: its last ``seconds`` crossfade
    from the track's own sound onto its first sample, so the wrap from the last sample to sample
    0 has no step (a click is a step in the waveform)."""
    samples = audio.samples.copy()
    n = min(round(seconds * audio.rate), samples.shape[1] // 2)
    if n < 2:
        return audio
    w = np.linspace(0.0, 1.0, n, dtype=np.float32)
    target = np.repeat(samples[:, :1], n, axis=1)
    samples[:, -n:] = samples[:, -n:] * (1.0 - w) + target * w
    return Audio(samples, audio.rate)


def crossfade(a: Audio, b: Audio, weight: np.ndarray) -> Audio:
    """``a`` into ``b`` by ``weight`` (one value per video frame, 0 = all a, 1 = all b), the
    weights spread over the samples linearly; both fitted to the frames' duration."""
    rate = max(a.rate, b.rate)
    a, b = a.resampled(rate), b.resampled(rate)
    count = max(a.samples.shape[1], b.samples.shape[1])
    a, b = a.fit_samples(count), b.fit_samples(count)
    frames = np.linspace(0.0, len(weight) - 1, count)
    w = np.interp(frames, np.arange(len(weight)), np.asarray(weight, dtype=np.float64)).astype(np.float32)
    return Audio(a.samples * (1.0 - w) + b.samples * w, rate)


# --- reading ----------------------------------------------------------------------------------


def has_audio(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a sound track. A file PyAV cannot open has none here: the input
    checks that read it for its frames give the clear error."""
    import av

    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except (av.error.FFmpegError, OSError):
        return False


def read_audio(path: str | os.PathLike[str], rate: int = RATE) -> Audio | None:
    """The first audio track of ``path``, decoded and resampled to ``rate`` stereo, on the video's
    time axis (sample 0 at the first frame); None when the file has no sound."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
        # The AAC encoder pads its last frame: the stream's duration says where the sound ends.
        length = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        chunks: list[np.ndarray] = []
        start: float | None = None
        for frame in _decoded(container, stream):
            if start is None and frame.pts is not None and frame.time_base is not None:
                start = float(frame.pts * frame.time_base)
            chunks += [out.to_ndarray() for out in resampler.resample(frame)]
        chunks += [out.to_ndarray() for out in resampler.resample(None)]
    samples = (
        np.concatenate(chunks, axis=1).astype(np.float32) if chunks else np.zeros((CHANNELS, 0), np.float32)
    )
    lead = round((start or 0.0) * rate)
    if lead > 0:  # a track that starts after the first frame: silence until it does
        samples = np.concatenate([np.zeros((CHANNELS, lead), np.float32), samples], axis=1)
    elif lead < 0:
        samples = samples[:, -lead:]
    audio = Audio(samples, rate)
    return audio.fit(length) if length is not None else audio


def _decoded(container: object, stream: object) -> Iterator[object]:
    yield from container.decode(stream)  # type: ignore[attr-defined]
