"""The visible label over the API: ``openreel serve --label`` labels every video, a request's
``label`` (the SDK's ``extra_body``, as the CLI's --label/--no-label) overrides it, with its own
text and corner if it likes. The real server and engine (tiny-wan) driven by the ``openai`` SDK;
what is checked is what a client gets: the echo, the label in the decoded frames, the manifest,
and the invisible mark read from the downloaded file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest

from openreel.provenance.label import Label, label_frames
from openreel.provenance.verify import verify
from remote_server import RemoteServer

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")]

# Large enough to carry the invisible mark and a legible label (as tests/test_label.py).
WIDTH, HEIGHT = 480, 288
SMALL = {"model": "tiny-wan", "seconds": "1", "size": f"{WIDTH}x{HEIGHT}"}


@pytest.fixture(scope="module")
def server(session_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    folder = tmp_path_factory.mktemp("label-server")
    remote = RemoteServer(
        session_home,
        f"sqlite:///{folder / 'openreel.db'}",
        args=("--label",),
        env={"OPENREEL_OUTPUT_DIR": str(folder / "outputs"), "OPENREEL_LABEL": "0"},
    )
    try:
        yield remote
    finally:
        remote.stop()


def made(client: openai.OpenAI, **extra_body) -> openai.types.Video:
    video = client.videos.create(
        prompt="a lighthouse at dusk", **SMALL, extra_body={"seed": 7, "steps": 2, **extra_body}
    )
    deadline = time.monotonic() + 180
    while video.status not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        video = client.videos.retrieve(video.id)
    assert video.status == "completed", video.error
    return video


def download(client: openai.OpenAI, video_id: str, tmp_path: Path) -> tuple[Path, np.ndarray]:
    import av

    path = tmp_path / f"{video_id}.mp4"
    client.videos.download_content(video_id).write_to_file(path)
    with av.open(str(path)) as container:
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    return path, frames.astype(np.int16)


def corner(label: Label) -> np.ndarray:
    """Where ``label`` touches a frame: the pixels it changes on a mid-grey frame."""
    grey = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    (out,) = label_frames([grey], label)
    return np.any(out != grey, axis=2)


def shows(frames: np.ndarray, plain: np.ndarray, label: Label) -> bool:
    """Whether ``frames`` carry ``label``: far from the unlabelled video under its box."""
    return float(np.abs(frames - plain).mean(axis=(0, 3))[corner(label)].mean()) > 20


def test_server_label_and_request_label(server: RemoteServer, tmp_path: Path) -> None:
    client = server.client()
    plain_video = made(client, label=False)  # the request wins over serve --label
    assert plain_video.openreel["label"] is None
    _, plain = download(client, plain_video.id, tmp_path)

    default = made(client)  # serve --label: the owner's style
    assert default.openreel["label"] == Label().to_dict()
    path, frames = download(client, default.id, tmp_path)
    assert shows(frames, plain, Label())
    assert not shows(frames, plain, Label(corner="top-left"))
    report = verify(path)
    assert report.manifest.claims["visible_label"] == Label().to_dict()
    # The invisible mark is laid over the label and still found in the downloaded file.
    assert report.watermark.found

    own = made(client, label={"text": "Synthetic", "corner": "top-left", "size": 0.06})
    wanted = Label(text="Synthetic", corner="top-left", size=0.06)
    assert own.openreel["label"] == wanted.to_dict()
    path, frames = download(client, own.id, tmp_path)
    assert shows(frames, plain, wanted) and not shows(frames, plain, Label())
    assert verify(path).manifest.claims["visible_label"] == wanted.to_dict()


@pytest.mark.parametrize(
    ("label", "says"),
    [
        ({"corner": "middle"}, "label corner 'middle'"),
        ({"size": 2}, "label size 2"),
        ({"colour": "red"}, "unknown label field(s) colour"),
        ("sometimes", "label"),
    ],
)
def test_bad_label_is_one_clear_400(server: RemoteServer, label: object, says: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        server.client().videos.create(prompt="a lighthouse", **SMALL, extra_body={"label": label})
    error = caught.value.body
    assert error["param"] == "label" and says in error["message"], error
