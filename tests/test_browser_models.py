"""The studio's models view (issue 15, item 2), in Chromium against a real server: a downloaded
tiny twin and a hub model in a fake Hugging Face cache show their size; deleting the twin frees it;
a failed video's "Download it" opens the view on its model, whose download fails offline with a
sentence that says why. Screenshots at 1400 px and 390 px go to test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.test_first_hour import fake_download

import browser_support
from browser_support import JOB_TIMEOUT_MS, open_settings, shot, sync_api
from remote_server import RemoteServer

browser = browser_support.browser
page = browser_support.page

expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    """A server of its own: its openreel folder holds a built tiny-wan, its HF cache CogVideoX-2b."""
    from openreel.models.catalog import get_card
    from openreel.models.weights import ensure_tiny

    home = tmp_path_factory.mktemp("models-home")
    folder = tmp_path_factory.mktemp("models-studio")
    cache = folder / "hf"
    fake_download(cache, "THUDM/CogVideoX-2b", {"model_index.json": b"{}", "vae/w.bin": b"x" * 300_000})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENREEL_HOME", str(home))
        ensure_tiny(get_card("tiny-wan"))
    remote = RemoteServer(
        home,
        f"sqlite:///{folder / 'openreel.db'}",
        env={"OPENREEL_OUTPUT_DIR": str(folder / "outputs"), "HF_HUB_CACHE": str(cache)},
    )
    try:
        yield remote
    finally:
        remote.stop()


def model_card(page, model_id: str):
    return page.locator(f'#models-list > li[data-model="{model_id}"]')


def test_models_view_shows_sizes_and_deletes_a_twin(server: RemoteServer, page) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    # Reachable from the header by keyboard.
    page.get_by_role("button", name="Models").focus()
    page.keyboard.press("Enter")
    view = page.get_by_role("dialog", name="Models")
    expect(view).to_be_visible()

    cog = model_card(page, "cogvideox-2b")
    expect(cog).to_have_attribute("data-state", "downloaded")
    expect(cog.locator("dd").first).to_have_text("293 KB")
    expect(cog).to_contain_text("Apache-2.0")
    expect(cog).to_contain_text("text → video")
    expect(cog.locator(".fits, .too-big")).to_have_count(1)
    missing = model_card(page, "wan2.1-t2v-1.3b")
    expect(missing).to_have_attribute("data-state", "missing")
    expect(missing.get_by_role("button", name="Download: wan2.1-t2v-1.3b")).to_be_visible()
    # Tiny test models stay out of the way until asked for (a built one shows anyway).
    expect(model_card(page, "tiny-ltx")).to_have_count(0)
    twin = model_card(page, "tiny-wan")
    expect(twin).to_have_attribute("data-state", "downloaded")
    expect(twin).to_contain_text("tiny test model")
    shot(page, "models-view-1400", full_page=False)

    delete = twin.get_by_role("button", name="Delete: tiny-wan")
    delete.click()
    expect(delete).to_have_text("Press again to delete")
    delete.click()
    expect(page.locator("#models-status")).to_contain_text("Deleted tiny-wan")
    expect(twin).to_have_attribute("data-state", "missing")
    expect(twin.get_by_role("button", name="Build: tiny-wan")).to_be_focused()
    page.keyboard.press("Escape")
    expect(view).to_be_hidden()


def test_download_it_from_a_failed_video(server: RemoteServer, page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    prompt = "a harbour the server has no weights for"
    composer = page.locator("#composer")
    composer.get_by_label("Prompt", exact=True).fill(prompt)
    open_settings(page)
    composer.get_by_label("Model").select_option("wan2.1-t2v-1.3b")
    composer.get_by_label("Duration (seconds)").fill("1")
    page.get_by_role("button", name="Create video").click()
    card = page.locator("#gallery-list > li.card").filter(has_text=prompt)
    expect(card).to_have_attribute("data-status", "failed", timeout=JOB_TIMEOUT_MS)
    card.get_by_role("button", name="Download it").click()

    view = page.get_by_role("dialog", name="Models")
    expect(view).to_be_visible()
    wan = model_card(page, "wan2.1-t2v-1.3b")
    # Offline, the server's download job fails and the card says why, in words.
    error = wan.locator(".download-error")
    expect(error).to_have_text(
        "The download failed: the server could not reach the Hugging Face hub, or has no room for the files.",
        timeout=60_000,
    )
    said = wan.locator(".download-error-details")
    expect(said.locator("p")).to_be_hidden()
    said.get_by_text("What the server said").click()
    expect(said.locator("p")).to_contain_text("could not download Wan-AI/Wan2.1-T2V-1.3B-Diffusers")
    expect(said.locator("p")).to_contain_text("Check the network")
    expect(wan.get_by_role("button", name="Download: wan2.1-t2v-1.3b")).to_be_visible()
    wan.scroll_into_view_if_needed()
    shot(page, "models-view-390-failed", full_page=False)
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(
        """() => [...document.querySelectorAll('*')]
            .filter((node) => node.getBoundingClientRect().right + window.scrollX > 391)
            .map((node) => `${node.tagName}#${node.id}.${node.className}`).slice(0, 8)"""
    )
    assert width <= 390, f"the page scrolls sideways at 390 px ({width} px wide): {wide}"
    assert Path(browser_support.ARTIFACTS / "models-view-390-failed.png").is_file()


def test_a_download_under_way_shows_progress_and_cancels(server: RemoteServer, page) -> None:
    """The server's answers are shaped here (a real download needs the hub): 40% of 2 GiB arrived."""
    import json

    state = {"status": "downloading"}

    def models_route(route) -> None:
        body = route.fetch().json()
        for card in body["data"]:
            if card["id"] == "ltx-video-2b":
                card["download"] = {
                    "model": "ltx-video-2b",
                    "status": state["status"],
                    "bytes_done": 858_993_460,
                    "total_bytes": 2 * 2**30,
                    "started_at": 1,
                    "finished_at": None,
                    "error": "Cancelled. Start it again to carry on from what has arrived."
                    if state["status"] == "cancelled"
                    else None,
                    "error_code": None,
                }
        route.fulfill(json=body)

    def cancel_route(route) -> None:
        assert route.request.method == "DELETE"
        state["status"] = "cancelled"
        route.fulfill(content_type="application/json", body=json.dumps({"status": "cancelled"}))

    page.route("**/v1/openreel/models", models_route)
    page.route("**/v1/openreel/models/ltx-video-2b/download", cancel_route)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.get_by_role("button", name="Models").click()
    ltx = model_card(page, "ltx-video-2b")
    expect(ltx).to_have_attribute("data-state", "downloading")
    bar = ltx.get_by_role("progressbar", name="Download of ltx-video-2b")
    expect(bar).to_have_attribute("value", "858993460")
    expect(ltx.locator(".progress-text")).to_have_text("Downloading: 819 MB of 2.0 GB (40%)")
    ltx.scroll_into_view_if_needed()
    shot(page, "models-view-390-progress", full_page=False)
    ltx.get_by_role("button", name="Cancel download: ltx-video-2b").click()
    expect(ltx).to_have_attribute("data-state", "missing")
    expect(ltx.locator(".download-error")).to_contain_text("Cancelled")
    expect(ltx.get_by_role("button", name="Download: ltx-video-2b")).to_be_focused()
