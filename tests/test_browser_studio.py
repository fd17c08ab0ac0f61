"""The studio as a media-first page, in Chromium against a real server: the gallery is a grid of
tiles that play on hover, a click or Enter opens the viewer, filters and the search narrow the
grid, favourites stay across a reload, and keyboard shortcuts work except while typing.

Screenshots at 1400 px and 390 px go to test-artifacts/ (studio-*.png) for a person to look at.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest

import browser_support
from browser_support import FAST_SIZE, JOB_TIMEOUT_MS, shot, sync_api
from remote_server import RemoteServer

browser = browser_support.browser
page = browser_support.page
server = browser_support.server

expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KITE = "a red kite over the dunes"
LIGHTHOUSE = "a lighthouse in the fog"
MISSING = "a harbour the server has no weights for"


def _make(server: RemoteServer, prompt: str, model: str) -> str:
    body = {"prompt": prompt, "model": model, "seconds": "1", "size": FAST_SIZE, "steps": 1, "seed": 5}
    return httpx.post(f"{server.url}/v1/videos", json=body, timeout=30).json()["id"]


@pytest.fixture(scope="module")
def videos(server: RemoteServer) -> dict[str, str]:
    """Two finished tiny-wan clips and one failed job (a real model that is not downloaded)."""
    made = {prompt: _make(server, prompt, model) for prompt, model in (
        (MISSING, "wan2.1-t2v-1.3b"), (KITE, "tiny-wan"), (LIGHTHOUSE, "tiny-wan"),
    )}
    deadline = time.monotonic() + 2 * JOB_TIMEOUT_MS / 1000
    for prompt, video_id in made.items():
        status = None
        while status not in ("completed", "failed"):
            assert time.monotonic() < deadline, f"{prompt!r} did not finish"
            time.sleep(0.2)
            status = httpx.get(f"{server.url}/v1/videos/{video_id}", timeout=30).json()["status"]
        assert status == ("failed" if prompt == MISSING else "completed"), (prompt, status)
    return made


def tile(page, prompt: str):
    return page.locator("#gallery-list > li.card").filter(has_text=prompt)


def shown_prompts(page) -> list[str]:
    return page.locator("#gallery-list > li.card:not([hidden]) .prompt").all_inner_texts()


def open_studio(page, server: RemoteServer, width: int = 1400) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#gallery-list > li.card")).to_have_count(3)
    expect(tile(page, KITE)).to_have_attribute("data-status", "completed")
    expect(tile(page, MISSING)).to_have_attribute("data-status", "failed")


def test_grid_hover_play_and_viewer(server: RemoteServer, videos: dict[str, str], page) -> None:
    open_studio(page, server)
    # A grid: at 1400 px the tiles stand side by side in one row, under the prompt bar.
    boxes = [tile(page, prompt).bounding_box() for prompt in (KITE, LIGHTHOUSE, MISSING)]
    assert len({round(box["y"]) for box in boxes}) == 1, boxes
    assert len({round(box["x"]) for box in boxes}) == 3, boxes
    assert page.locator("#prompt").bounding_box()["y"] < boxes[0]["y"]
    expect(page.locator("#composer-settings")).to_be_hidden()  # settings are one click away

    kite = tile(page, KITE)
    player = kite.locator("video")
    page.wait_for_function("v => v.readyState >= 1", arg=player.element_handle(), timeout=20_000)
    assert player.get_attribute("poster"), "the thumbnail is the tile's poster"
    assert player.evaluate("v => v.paused && v.muted")
    # Hover plays it, muted; leaving stops it.
    kite.hover()
    page.wait_for_function("v => !v.paused && v.currentTime > 0", arg=player.element_handle(), timeout=20_000)
    shot(page, "studio-1400-hover", full_page=False)
    page.mouse.move(5, 5)
    page.wait_for_function("v => v.paused && v.currentTime === 0", arg=player.element_handle())
    # The keyboard on a tile plays it too; reduced motion means nothing moves by itself.
    kite.get_by_role("button", name=f"Open: {KITE}").focus()
    page.wait_for_function("v => !v.paused", arg=player.element_handle(), timeout=20_000)
    page.locator("#gallery-search").focus()
    page.emulate_media(reduced_motion="reduce")
    kite.hover()
    page.wait_for_timeout(400)
    assert player.evaluate("v => v.paused"), "hover played a video although reduced motion was asked for"
    page.mouse.move(5, 5)
    page.emulate_media(reduced_motion="no-preference")

    # A click opens the viewer: the video large with controls, its details and its actions.
    kite.get_by_role("button", name=f"Open: {KITE}").click()
    viewer = page.locator("dialog#details")
    expect(viewer).to_be_visible()
    big = viewer.locator("video.viewer-video")
    expect(big).to_have_attribute("controls", "")
    page.wait_for_function(
        "v => v.readyState >= 1 && v.duration > 0.9", arg=big.element_handle(), timeout=20_000
    )
    expect(viewer.locator("#details-recipe")).to_contain_text("tiny-wan")
    for name in ("Use these settings again", "Edit this video", f"Download: {KITE}", f"Delete: {KITE}"):
        expect(viewer.get_by_role("button", name=name)).to_be_visible()
    expect(viewer.locator("#details-provenance")).to_contain_text("C2PA manifest valid", timeout=20_000)
    shot(page, "studio-1400-viewer", full_page=False)
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    assert big.count() == 0 or big.evaluate("v => v.paused")
    # Enter on a focused tile opens it as well.
    tile(page, LIGHTHOUSE).get_by_role("button", name=f"Open: {LIGHTHOUSE}").press("Enter")
    expect(viewer).to_be_visible()
    expect(viewer.locator(".details-prompt")).to_have_text(LIGHTHOUSE)
    page.keyboard.press("Escape")


def test_filters_search_favourites_and_shortcuts(server: RemoteServer, videos: dict[str, str], page) -> None:
    open_studio(page, server)
    count = page.locator("#gallery-count")
    search = page.get_by_label("Search prompts")
    search.fill("KITE dunes")  # every word, any case
    assert shown_prompts(page) == [KITE]
    expect(count).to_have_text("(1 of 3 videos)")
    search.fill("")
    page.get_by_label("Filter by status").select_option("failed")
    assert shown_prompts(page) == [MISSING]
    page.get_by_label("Filter by status").select_option("completed")
    assert sorted(shown_prompts(page)) == sorted([KITE, LIGHTHOUSE])
    page.get_by_label("Filter by status").select_option("")
    page.get_by_label("Filter by model").select_option("wan2.1-t2v-1.3b")
    assert shown_prompts(page) == [MISSING]
    page.get_by_label("Filter by model").select_option("")
    search.fill("no such words")
    expect(page.locator("#gallery-nomatch")).to_be_visible()
    page.get_by_role("button", name="Show all videos").click()
    assert len(shown_prompts(page)) == 3

    # A star on a tile; "Favourites only" keeps the starred; both survive a reload.
    star = tile(page, LIGHTHOUSE).get_by_role("button", name=f"Favourite: {LIGHTHOUSE}")
    star.click()
    expect(star).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="★ Favourites only").click()
    assert shown_prompts(page) == [LIGHTHOUSE]
    shot(page, "studio-1400-favourites", full_page=False)
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(tile(page, LIGHTHOUSE).get_by_role("button", name=f"Favourite: {LIGHTHOUSE}")).to_have_attribute(
        "aria-pressed", "true"
    )
    kite_star = tile(page, KITE).get_by_role("button", name=f"Favourite: {KITE}")
    expect(kite_star).to_have_attribute("aria-pressed", "false")
    page.get_by_role("button", name="★ Favourites only").click()
    assert shown_prompts(page) == [LIGHTHOUSE]
    page.get_by_role("button", name="★ Favourites only").click()

    # Shortcuts: "/" search, "n" the prompt, "s" the settings, "?" the list; typed as text in a field.
    page.locator("#gallery-heading").focus()
    page.keyboard.press("/")
    expect(search).to_be_focused()
    page.keyboard.type("n?")
    expect(search).to_have_value("n?")
    expect(page.locator("dialog#shortcuts")).to_be_hidden()
    search.fill("")
    page.locator("#gallery-heading").focus()
    page.keyboard.press("n")
    expect(page.locator("#prompt")).to_be_focused()
    page.locator("#gallery-heading").focus()
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    # "f" stars the tile that has the keyboard.
    tile(page, KITE).get_by_role("button", name=f"Open: {KITE}").focus()
    page.keyboard.press("f")
    expect(kite_star).to_have_attribute("aria-pressed", "true")
    page.locator("#gallery-heading").focus()
    page.keyboard.press("s")
    expect(page.locator("#settings-button")).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_label("Negative prompt")).to_be_focused()  # the first setting
    shot(page, "studio-1400-settings", full_page=False)


def test_narrow_phone_width(server: RemoteServer, videos: dict[str, str], page) -> None:
    open_studio(page, server, width=390)
    page.set_viewport_size({"width": 390, "height": 844})

    def overflow() -> int:
        return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")

    assert overflow() <= 0, f"the page is {overflow()}px wider than a 390px window"
    # One tile per row at this width.
    xs = {round(tile(page, prompt).bounding_box()["x"]) for prompt in (KITE, LIGHTHOUSE, MISSING)}
    assert len(xs) == 1, xs
    shot(page, "studio-390")
    page.locator("#settings-button").click()
    assert overflow() <= 0, f"with the settings open the page is {overflow()}px too wide"
    shot(page, "studio-390-settings")
    page.locator("#settings-button").click()
    tile(page, KITE).get_by_role("button", name=re.compile("^Open:")).click()
    expect(page.locator("dialog#details")).to_be_visible()
    assert overflow() <= 0
    shot(page, "studio-390-viewer", full_page=False)
