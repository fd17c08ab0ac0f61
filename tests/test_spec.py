import pytest

from openreel.errors import SpecError
from openreel.spec import SORA_SIZES, VideoSpec, parse_size, size_for


@pytest.mark.parametrize(
    ("resolution", "aspect", "expected"),
    [
        ("480p", "16:9", (854, 480)),
        ("480p", "9:16", (480, 854)),
        ("720p", "16:9", (1280, 720)),
        ("720p", "1:1", (720, 720)),
        ("1080p", "16:9", (1920, 1080)),
        ("1080p", "9:16", (1080, 1920)),
    ],
)
def test_named_sizes(resolution, aspect, expected):
    assert size_for(resolution, aspect) == expected


@pytest.mark.parametrize("size", SORA_SIZES)
def test_sora_sizes_parse(size):
    width, height = parse_size(size)
    assert f"{width}x{height}" == size


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1280*720", "WIDTHxHEIGHT"),
        ("1281x720", "even"),
        ("32x32", "outside"),
        ("4000x720", "outside"),
        ("2000x256", "elongated"),
    ],
)
def test_bad_sizes(text, fragment):
    with pytest.raises(SpecError, match=fragment) as info:
        parse_size(text)
    assert info.value.param == "size"


def test_unknown_resolution_and_aspect_name_allowed_values():
    with pytest.raises(SpecError, match="480p, 720p, 1080p"):
        size_for("4k", "16:9")
    with pytest.raises(SpecError, match="16:9, 9:16, 1:1"):
        size_for("480p", "4:3")


def test_validated_normalises():
    spec = VideoSpec(prompt="  a boat  ", seconds="4", fps=24.0, negative_prompt="  ").validated()
    assert spec.prompt == "a boat"
    assert spec.seconds == 4.0 and spec.fps == 24
    assert spec.negative_prompt is None
    assert spec.num_frames == 96


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"prompt": " "}, "prompt"),
        ({"seconds": 0}, "seconds"),
        ({"seconds": -1}, "seconds"),
        ({"seconds": "ten"}, "seconds"),
        ({"seconds": float("nan")}, "seconds"),
        ({"fps": 0}, "fps"),
        ({"fps": 24.5}, "fps"),
        ({"variations": 0}, "variations"),
        ({"variations": 5}, "variations"),
        ({"seed": -1}, "seed"),
        ({"steps": 0}, "steps"),
        ({"guidance": 99}, "guidance"),
        ({"mode": "dance"}, "mode"),
        ({"seconds": 0.01, "fps": 8}, "seconds"),
    ],
)
def test_bad_specs_name_their_parameter(changes, param):
    with pytest.raises(SpecError) as info:
        VideoSpec(**{"prompt": "a boat", **changes}).validated()
    assert info.value.param == param


def test_round_trip_dict():
    spec = VideoSpec(prompt="a boat", seed=7, style="film-noir").validated()
    assert VideoSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(SpecError, match="unknown field"):
        VideoSpec.from_dict({"prompt": "x", "colour": "red"})
