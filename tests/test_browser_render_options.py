"""Quality, memory and LoRAs in the studio's composer, in Chromium against a real server whose
LoRA folder holds a Wan LoRA and an LTX-Video LoRA: what the person picks reaches the video (its
echo in the API), a LoRA for another family cannot be picked, and a bad strength is shown by the
LoRAs it is about."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.test_lora import offered_loras

import browser_support
from browser_support import FAST_SIZE, open_settings, shot, sync_api
from remote_server import RemoteServer

browser = browser_support.browser
page = browser_support.page
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(session_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    folder = tmp_path_factory.mktemp("studio-loras")
    loras = offered_loras(folder / "loras")
    remote = RemoteServer(
        session_home,
        f"sqlite:///{folder / 'openreel.db'}",
        args=("--lora-dir", str(loras)),
        env={"OPENREEL_OUTPUT_DIR": str(folder / "outputs")},
    )
    try:
        yield remote
    finally:
        remote.stop()


def lora_box(page, name: str):
    return page.locator("#composer").get_by_role("checkbox", name=re.compile(f"^{name}"))


def compose(page, prompt: str, strength: str) -> None:
    form = page.locator("#composer")
    form.get_by_label("Prompt", exact=True).fill(prompt)
    open_settings(page)
    form.get_by_label("Model").select_option("tiny-wan")
    form.get_by_label("Duration (seconds)").fill("1")
    form.get_by_label("Exact size").check()
    form.get_by_label("Width × height").fill(FAST_SIZE)
    form.get_by_label("Steps").fill("2")
    form.get_by_label("Quality").select_option("draft")
    page.locator("#more-settings > summary").click()
    form.get_by_label("Memory").select_option("low")
    lora_box(page, "harbour-look").check()
    form.get_by_label("Strength of harbour-look").fill(strength)


def newest(server: RemoteServer) -> dict:
    return httpx.get(f"{server.url}/v1/videos", params={"limit": 1}, timeout=30).json()["data"][0]


def test_quality_memory_and_a_lora_from_the_composer_reach_the_video(server: RemoteServer, page) -> None:
    page.goto(server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    compose(page, "a harbour at dawn, with a look", "0.5")
    # The LTX-Video LoRA is listed, with why it cannot be picked for this Wan model.
    ltx = lora_box(page, "ltx-look")
    expect(ltx).to_be_disabled()
    expect(page.locator(".lora-row[data-lora=ltx-look]")).to_contain_text("made for LTX-Video")
    expect(page.locator(".lora-row[data-lora=harbour-look]")).to_contain_text("by Ada Lovelace (CC-BY-4.0)")
    shot(page, "composer-loras")
    page.get_by_role("button", name="Create video").click()
    expect(page.locator("#composer-status")).to_contain_text("Queued")

    video = newest(server)
    assert video["prompt"] == "a harbour at dawn, with a look"
    echo = video["openreel"]
    assert echo["quality"] == "draft" and echo["memory"] == "low"
    assert echo["loras"] == [{"source": "harbour-look", "scale": 0.5}]
    deadline = time.monotonic() + 120
    while video["status"] not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        video = httpx.get(f"{server.url}/v1/videos/{video['id']}", timeout=30).json()
    assert video["status"] == "completed", video.get("error")
    assert video["openreel"]["credits"]["loras"][0]["author"] == "Ada Lovelace"

    # Details say what draft changed and which LoRA at what strength; then "Use settings again"
    # after a reload brings the LoRA, its strength and the quality back.
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.locator("#gallery-list > li.card").first.get_by_role("button", name=re.compile("^Details")).click()
    recipe = page.locator("dialog#details #details-recipe")
    expect(recipe).to_contain_text("harbour-look × 0.5")
    expect(recipe).to_contain_text("draft: ")
    page.keyboard.press("Escape")
    page.locator("#composer").get_by_role("button", name="Clear").click()
    open_settings(page)  # a reload closes the settings panel: the LoRAs are in it
    expect(lora_box(page, "harbour-look")).not_to_be_checked()
    card = page.locator("#gallery-list > li.card").first
    card.get_by_role("button", name="Use settings again").first.click()
    expect(lora_box(page, "harbour-look")).to_be_checked()
    expect(page.locator("#composer").get_by_label("Strength of harbour-look")).to_have_value("0.5")
    expect(page.locator("#composer").get_by_label("Quality")).to_have_value("draft")


def test_a_bad_strength_is_shown_by_the_loras(server: RemoteServer, page) -> None:
    page.goto(server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    compose(page, "a harbour far too strong", "50")
    page.get_by_role("button", name="Create video").click()
    error = page.locator("#loras-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("LoRA scale must be between")
    expect(page.locator("#more-settings")).to_have_attribute("open", "")
    expect(page.locator("#composer-error")).to_contain_text("see LoRAs above")


def test_the_sound_box_shows_for_models_that_make_sound_and_turns_it_off(server: RemoteServer, page) -> None:
    page.goto(server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    open_settings(page)
    form = page.locator("#composer")
    form.get_by_label("Model").select_option("tiny-wan")
    expect(page.locator("#audio-field")).to_be_hidden()  # a silent model: nothing to turn off
    form.get_by_label("Model").select_option("tiny-ltx-2")
    sound = form.get_by_role("checkbox", name=re.compile("^Sound"))
    expect(sound).to_be_checked()  # on by default, as with Sora 2
    sound.uncheck()
    form.get_by_label("Prompt", exact=True).fill("a drummer, silent")
    form.get_by_label("Duration (seconds)").fill("1")
    form.get_by_label("Steps").fill("2")
    page.get_by_role("button", name="Create video").click()
    expect(page.locator("#composer-status")).to_contain_text("Queued")
    assert newest(server)["openreel"]["audio"] is False
