"""The newest cards' twins from the studio's composer, in Chromium against a real server: each is
picked, made (from an image where the checkpoint needs one) and finished, with its licence shown."""

from __future__ import annotations

import io
import time

import httpx
import pytest
from PIL import Image

import browser_support
from browser_support import open_settings, sync_api
from openreel.models.catalog import get_card
from remote_server import RemoteServer

browser = browser_support.browser
page = browser_support.page
server = browser_support.server
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NEW_TWINS = [
    "tiny-wan2.2-t2v-a14b",
    "tiny-wan2.2-i2v-a14b",
    "tiny-hunyuan15",
    "tiny-hunyuanvideo-1.5-i2v",
    "tiny-skyreels",
    "tiny-ltx-2",
]


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (40, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_each_new_twin_is_made_from_the_composer(server: RemoteServer, page) -> None:
    page.goto(server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    form = page.locator("#composer")
    made = {}
    for model in NEW_TWINS:
        card = get_card(model)
        open_settings(page)
        form.get_by_label("Model").select_option(model)
        expect(page.locator("#model-info")).to_contain_text(card.licence.split(" (")[0])
        if "t2v" not in card.modes:  # an image-to-video checkpoint starts from an image
            expect(page.locator("#upload-field")).to_be_visible()
            page.set_input_files(
                "#input_reference", files=[{"name": "start.png", "mimeType": "image/png", "buffer": png()}]
            )
        prompt = f"a kite by {model}"
        form.get_by_label("Prompt", exact=True).fill(prompt)
        form.get_by_label("Duration (seconds)").fill("1")
        form.get_by_label("Exact size").check()
        form.get_by_label("Width × height").fill(f"{card.native_width}x{card.native_height}")
        form.get_by_label("Steps").fill("2")
        page.get_by_role("button", name="Create video").click()
        expect(page.locator("#composer-status")).to_contain_text("Queued")
        video = httpx.get(f"{server.url}/v1/videos", params={"limit": 1}, timeout=30).json()["data"][0]
        assert video["prompt"] == prompt and video["openreel"]["model"] == model
        made[model] = video["id"]
        page.locator("#composer").get_by_role("button", name="Clear").click()

    deadline = time.monotonic() + 180
    for model, video_id in made.items():
        while True:
            video = httpx.get(f"{server.url}/v1/videos/{video_id}", timeout=30).json()
            if video["status"] in ("completed", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert video["status"] == "completed", (model, video.get("error"))
