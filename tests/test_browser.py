"""The studio page in a real browser: Debian's Chromium driven by Playwright against a real
server subprocess whose sora-2 is tiny-wan (random weights: seconds per clip on a CPU).

Screenshots of the composer, the gallery and the details panel go to test-artifacts/ (ignored by
git) so a person can look at what the page looked like.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

import browser_support
from browser_support import FAST_SIZE, JOB_TIMEOUT_MS, open_settings, shot, start_server, sync_api
from remote_server import RemoteServer

# The shared fixtures, assigned here so that pytest finds them in this module.
browser = browser_support.browser
page = browser_support.page
server = browser_support.server

expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def composer(page):
    """The composer form: the editing panel and the storyboard have fields of the same names."""
    return page.locator("#composer")


def fill_composer(page, prompt: str, *, seconds: str = "1", seed: str = "7", style: str = "anime") -> None:
    composer(page).get_by_label("Prompt", exact=True).fill(prompt)
    open_settings(page)
    composer(page).get_by_label("Style").select_option(style)
    composer(page).get_by_label("Model").select_option("tiny-wan")
    composer(page).get_by_label("Duration (seconds)").fill(seconds)
    composer(page).get_by_label("Exact size").check()
    composer(page).get_by_label("Width × height").fill(FAST_SIZE)
    composer(page).get_by_label("Seed").fill(seed)
    composer(page).get_by_label("Steps").fill("2")


def card_for(page, prompt: str):
    return page.locator("#gallery-list > li.card").filter(has_text=prompt)


def test_compose_watch_play_details_reuse_delete(server: RemoteServer, page) -> None:
    page.goto(server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    # The pickers come from the studio routes: styles with descriptions, models with their cards.
    assert page.locator("#style option[value=anime]").count() == 1
    open_settings(page)
    composer(page).get_by_label("Model").select_option("tiny-wan")
    expect(page.locator("#model-info")).to_contain_text("Random weights: the video is noise")

    prompt = "a paper boat on a rainy street"
    fill_composer(page, prompt)
    expect(page.locator("#style-info")).to_contain_text(f"anime style, {prompt}")
    shot(page, "composer")

    page.get_by_role("button", name="Create video").click()
    card = card_for(page, prompt)
    expect(card).to_have_count(1)
    # Live progress without a reload: the card passes through in_progress with a stage and a
    # percentage, then completes.
    expect(card).to_have_attribute("data-status", "in_progress", timeout=JOB_TIMEOUT_MS)
    expect(card.locator(".progress-text")).to_contain_text(re.compile(r"\d+%"))
    shot(page, "gallery-progress")
    expect(card).to_have_attribute("data-status", "completed", timeout=JOB_TIMEOUT_MS)
    expect(card.locator(".progress-text")).to_contain_text("Done")

    # It plays inline: the browser read the MP4's metadata (one second) and can play it.
    video = card.locator("video")
    video.evaluate("v => v.play()")
    page.wait_for_function(
        "v => v.readyState >= 2 && v.currentTime > 0", arg=video.element_handle(), timeout=20_000
    )
    duration = video.evaluate("v => v.duration")
    assert abs(duration - 1.0) < 0.1, duration
    assert video.get_attribute("poster"), "the thumbnail is the poster"
    video.evaluate("v => { v.pause(); v.currentTime = 0.5; }")
    shot(page, "gallery")

    # Details: the recipe (seed, steps, model), credits and the checked provenance.
    card.get_by_role("button", name=re.compile("^Details")).click()
    dialog = page.locator("dialog#details")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#details-recipe")).to_contain_text("tiny-wan")
    expect(dialog.locator("#details-recipe")).to_contain_text("7")
    expect(dialog.locator("#details-credits")).to_contain_text("Apache-2.0")
    expect(dialog.locator("#details-provenance")).to_contain_text("C2PA manifest valid", timeout=20_000)
    # Tall enough that the whole panel (recipe, credits, provenance) is in the picture.
    page.set_viewport_size({"width": 1280, "height": 2200})
    shot(page, "details")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # "Use settings again" puts the exact recipe back into the composer.
    page.get_by_role("button", name="Clear").click()
    expect(composer(page).get_by_label("Prompt", exact=True)).to_have_value("")
    card.get_by_role("button", name=re.compile("^Use settings again")).click()
    expect(composer(page).get_by_label("Prompt", exact=True)).to_have_value(prompt)
    expect(composer(page).get_by_label("Seed")).to_have_value("7")
    expect(composer(page).get_by_label("Steps")).to_have_value("2")
    expect(composer(page).get_by_label("Model")).to_have_value("tiny-wan")
    expect(composer(page).get_by_label("Style")).to_have_value("anime")
    expect(composer(page).get_by_label("Width × height")).to_have_value(FAST_SIZE)
    expect(composer(page).get_by_label("Prompt", exact=True)).to_be_focused()

    # Delete asks once more, then the card goes and the server has no such video.
    video_id = card.get_attribute("data-id")
    delete = card.get_by_role("button", name=re.compile("^Delete"))
    delete.click()
    expect(delete).to_have_text("Press again to delete")
    delete.click()
    expect(card).to_have_count(0)
    assert httpx.get(f"{server.url}/v1/videos/{video_id}").status_code == 404


def test_invalid_request_shows_the_error_by_its_field(server: RemoteServer, page) -> None:
    page.goto(server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    prompt = "a lighthouse that is far too long"
    fill_composer(page, prompt, seconds="60")
    page.get_by_role("button", name="Create video").click()
    error = page.locator("#seconds-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("at most 20 s")
    expect(composer(page).get_by_label("Duration (seconds)")).to_have_attribute("aria-invalid", "true")
    expect(composer(page).get_by_label("Duration (seconds)")).to_be_focused()
    expect(page.locator("#composer-error")).to_contain_text("not created")
    shot(page, "composer-error")
    # Nothing typed is lost, not even across a reload (the draft is kept in the browser).
    expect(composer(page).get_by_label("Prompt", exact=True)).to_have_value(prompt)
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(composer(page).get_by_label("Prompt", exact=True)).to_have_value(prompt)
    expect(composer(page).get_by_label("Duration (seconds)")).to_have_value("60")
    assert card_for(page, prompt).count() == 0


def test_image_upload_only_for_models_that_start_from_an_image(server: RemoteServer, page) -> None:
    page.goto(server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    models = httpx.get(f"{server.url}/v1/openreel/models").json()["data"]
    # Tiny models first: one that can start from an image is asked for a real job below.
    models.sort(key=lambda card: not card["random_weights"])
    i2v = [card["id"] for card in models if "i2v" in card["modes"]]
    text_only = [card["id"] for card in models if "i2v" not in card["modes"]]
    open_settings(page)
    if text_only:
        composer(page).get_by_label("Model").select_option(text_only[0])
        expect(page.locator("#upload-field")).to_be_hidden()
    if not i2v:
        return
    composer(page).get_by_label("Model").select_option(i2v[0])
    expect(page.locator("#upload-field")).to_be_visible()
    page.set_input_files(
        "#input_reference",
        files=[{"name": "start.png", "mimeType": "image/png", "buffer": _png()}],
    )
    expect(page.locator("#upload-preview")).to_be_visible()
    expect(page.locator("#upload-name")).to_contain_text("start.png")
    # Sent as the input_reference file part. Where the server cannot start from an image yet,
    # its 400 is shown under the image field; where it can, the job appears in the gallery.
    composer(page).get_by_label("Prompt", exact=True).fill("a kite from a still")
    composer(page).get_by_label("Duration (seconds)").fill("1")
    composer(page).get_by_label("Exact size").check()
    composer(page).get_by_label("Width × height").fill(FAST_SIZE)
    page.get_by_role("button", name="Create video").click()
    # Only a shown error counts: the hidden <p> is always in the page.
    refused = page.locator("#input_reference-error:not([hidden])")
    made = card_for(page, "a kite from a still")
    expect(refused.or_(made)).to_be_visible()
    if refused.is_visible():
        assert refused.inner_text().strip() and page.locator("#composer-error").is_visible()
        expect(page.locator("#upload-preview")).to_be_visible()  # the chosen image is kept


def test_narrow_window_has_no_sideways_scrolling(server: RemoteServer, browser) -> None:
    context = browser.new_context(viewport={"width": 380, "height": 800})
    try:
        page = context.new_page()
        page.goto(server.url)
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a 380px window"
        shot(page, "composer-narrow")
    finally:
        context.close()


def test_key_prompt_when_the_server_has_keys(
    browser, session_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    remote, keys = start_server(session_home, tmp_path_factory.mktemp("studio-keys"), keys=("alice",))
    try:
        auth = {"Authorization": f"Bearer {keys['alice']}"}
        made = httpx.post(
            f"{remote.url}/v1/videos",
            json={
                "prompt": "alice's clip",
                "model": "tiny-wan",
                "seconds": "1",
                "size": FAST_SIZE,
                "steps": 1,
                "variations": 2,
            },
            headers=auth,
        ).json()
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(remote.url)
        dialog = page.locator("dialog#key-dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("no API key given")
        expect(page.get_by_role("button", name="Forget the saved key")).to_be_hidden()
        shot(page, "key-prompt", full_page=False)  # a modal's backdrop covers the viewport only
        page.get_by_label("API key", exact=True).fill("ork-wrong")
        page.get_by_role("button", name="Use this key").click()
        expect(page.locator("#key-error")).to_contain_text("not accepted")
        expect(dialog).to_be_visible()
        page.get_by_label("API key", exact=True).fill(keys["alice"])
        page.get_by_role("button", name="Use this key").click()
        expect(dialog).to_be_hidden()
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        assert page.evaluate("localStorage.getItem('openreel.apiKey')") == keys["alice"]
        # With keys on, content comes through blob URLs fetched with the Authorization header.
        card = card_for(page, "alice's clip")
        expect(card).to_have_attribute("data-status", "completed", timeout=JOB_TIMEOUT_MS)
        video = card.locator("video")
        page.wait_for_function(
            "v => v.readyState >= 1 && v.src.startsWith('blob:')", arg=video.element_handle(), timeout=20_000
        )
        # Two variations: a picker switches the player to the second one.
        picker = card.get_by_role("group", name="Variation")
        first_src = video.get_attribute("src")
        picker.get_by_role("button", name="2").click()
        expect(picker.get_by_role("button", name="2")).to_have_attribute("aria-pressed", "true")
        page.wait_for_function(
            "([v, old]) => v.src.startsWith('blob:') && v.src !== old && v.readyState >= 1",
            arg=[card.locator("video").element_handle(), first_src],
            timeout=20_000,
        )
        # A reload keeps the key: no prompt.
        page.reload()
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(dialog).to_be_hidden()
        assert card_for(page, "alice's clip").get_attribute("data-id") == made["id"]
        context.close()
    finally:
        remote.stop()


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()
