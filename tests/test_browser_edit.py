"""The studio's editing tools in a real browser (issue 7): the editing panel (remix, extend,
re-cut, blend) and the storyboard editor, on a real server subprocess with tiny-ltx (random
weights, 128x64, one second, two steps: seconds per job on a CPU).

Screenshots of the editing panel and the storyboard editor go to test-artifacts/.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest

import browser_support
from browser_support import JOB_TIMEOUT_MS, shot, sync_api
from remote_server import RemoteServer

# The shared fixtures, assigned here so that pytest finds them in this module.
browser = browser_support.browser
page = browser_support.page
server = browser_support.server

expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LTX_SIZE = "128x64"  # tiny-ltx's native size: nothing to resize
SOURCE_PROMPT = "a red kite over the dunes"


@pytest.fixture(scope="module")
def ltx_video(server: RemoteServer) -> dict:
    """One finished tiny-ltx video to edit (the composer's own path is test_browser's)."""
    made = httpx.post(
        f"{server.url}/v1/videos",
        json={
            "prompt": SOURCE_PROMPT,
            "model": "tiny-ltx",
            "seconds": "1",
            "size": LTX_SIZE,
            "steps": 2,
            "seed": 3,
        },
    ).json()
    deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        video = httpx.get(f"{server.url}/v1/videos/{made['id']}").json()
        if video["status"] in ("completed", "failed"):
            assert video["status"] == "completed", video
            return video
        time.sleep(0.2)
    raise AssertionError(f"{made['id']} did not finish")


def open_studio(page, server: RemoteServer) -> None:
    page.goto(server.url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def card_by_id(page, video_id: str):
    return page.locator(f"#gallery-list > li.card[data-id='{video_id}']")


def open_editor(page, video_id: str):
    card_by_id(page, video_id).get_by_role("button", name=re.compile("^Edit:")).click()
    dialog = page.locator("dialog#edit")
    expect(dialog).to_be_visible()
    return dialog


def newest_card(page, lineage: str):
    """The card whose lineage line starts with ``lineage``, once it has finished."""
    card = page.locator("#gallery-list > li.card").filter(
        has=page.locator(".lineage", has_text=re.compile(f"^{re.escape(lineage)}"))
    )
    expect(card).to_have_count(1)
    expect(card).to_have_attribute("data-status", "completed", timeout=JOB_TIMEOUT_MS)
    return card


def set_steps(dialog, steps: str = "2") -> None:
    more = dialog.locator("details.more")
    if more.get_attribute("open") is None:
        more.locator("summary").click()
    dialog.get_by_label("Steps").fill(steps)


def test_remix_extend_recut_and_blend_from_the_edit_panel(
    server: RemoteServer, page, ltx_video: dict
) -> None:
    open_studio(page, server)
    source = card_by_id(page, ltx_video["id"])
    expect(source).to_have_attribute("data-status", "completed")

    # Remix: the video's own model is chosen (it can remix); a strength preset.
    dialog = open_editor(page, ltx_video["id"])
    expect(dialog.get_by_role("radio", name="Remix")).to_be_checked()
    expect(dialog.get_by_role("radio", name="Remix")).to_be_focused()
    expect(dialog.get_by_label("Model")).to_have_value("tiny-ltx")
    offered = dialog.locator("#edit-model option").evaluate_all("options => options.map(o => o.value)")
    assert "tiny-mochi" not in offered and "tiny-pyramid-flow" not in offered, offered
    dialog.get_by_label("What the remix should show").fill("the kite in falling snow")
    dialog.get_by_role("radio", name="Subtle").check()
    set_steps(dialog)
    shot(page, "edit-remix", full_page=False)
    dialog.get_by_role("button", name="Remix", exact=True).click()
    expect(dialog).to_be_hidden()
    remix = newest_card(page, "Remix (subtle) of")
    assert remix.get_attribute("data-id") != ltx_video["id"]
    # The parent link brings the source's card into view with the keyboard on it.
    remix.get_by_role("button", name=SOURCE_PROMPT, exact=True).click()
    expect(source).to_be_focused()

    # Extend backwards by one second: the new video is the whole two seconds.
    dialog = open_editor(page, ltx_video["id"])
    dialog.get_by_role("radio", name="Extend").check()
    dialog.get_by_label("Seconds to add").fill("1")
    dialog.get_by_role("radio", name=re.compile("^Backwards")).check()
    expect(dialog.get_by_label("Model")).to_have_value("tiny-ltx")  # it can go backwards
    set_steps(dialog)
    dialog.get_by_role("button", name="Extend", exact=True).click()
    extended = newest_card(page, "Extended backwards from")
    expect(extended.locator(".meta")).to_contain_text("2 s")

    # Re-cut with the keyboard on the range bar and a typed end: 0.25 s to 0.75 s.
    dialog = open_editor(page, ltx_video["id"])
    dialog.get_by_role("radio", name="Re-cut").check()
    start_handle = dialog.get_by_role("slider", name="Start of the cut")
    start_handle.focus()
    for _ in range(6):  # one frame at 24 fps each
        page.keyboard.press("ArrowRight")
    expect(dialog.get_by_label("Start (seconds)")).to_have_value("0.25")
    expect(start_handle).to_have_attribute("aria-valuenow", "0.25")
    dialog.get_by_label("End (seconds)").fill("0.75")
    expect(dialog.locator("#edit-recut-summary")).to_have_text("Keeps 0.5 s of 1 s.")
    shot(page, "edit-recut", full_page=False)
    dialog.get_by_role("button", name="Re-cut", exact=True).click()
    recut = newest_card(page, "Re-cut of")
    expect(recut.locator(".meta")).to_contain_text("0.5 s")

    # Blend: two videos picked from the gallery, a curve.
    dialog = open_editor(page, ltx_video["id"])
    dialog.get_by_role("radio", name="Blend").check()
    expect(dialog.get_by_label("First video")).to_have_value(ltx_video["id"])
    dialog.get_by_label("Blends into").select_option(remix.get_attribute("data-id"))
    dialog.get_by_label("Blend length (seconds)").fill("1")
    dialog.get_by_label("Curve").select_option("ease-in")
    set_steps(dialog)
    dialog.get_by_role("button", name="Blend", exact=True).click()
    blend = newest_card(page, "Blend of")
    expect(blend.locator(".lineage")).to_contain_text("the kite in falling snow")

    # The details panel names the parent too.
    recut.get_by_role("button", name=re.compile("^Details")).click()
    details = page.locator("dialog#details")
    expect(details.locator("#details-video")).to_contain_text(f"Re-cut of {SOURCE_PROMPT}")
    page.keyboard.press("Escape")


def test_unsupported_model_shows_its_error_by_the_model_picker(
    server: RemoteServer, page, ltx_video: dict
) -> None:
    open_studio(page, server)
    dialog = open_editor(page, ltx_video["id"])
    dialog.get_by_role("radio", name="Remix").check()
    prompt = "a kite that cannot be remixed here"
    dialog.get_by_label("What the remix should show").fill(prompt)
    # A catalog that changed since the page loaded: the picker offers a model that cannot remix.
    dialog.get_by_label("Model").evaluate(
        "select => { select.append(new Option('tiny-mochi', 'tiny-mochi')); select.value = 'tiny-mochi'; }"
    )
    dialog.get_by_role("button", name="Remix", exact=True).click()
    error = dialog.locator("#edit-model-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("tiny-mochi cannot do remix")
    expect(error).to_contain_text("tiny-ltx")  # the server names the models that can
    expect(dialog.get_by_label("Model")).to_have_attribute("aria-invalid", "true")
    expect(dialog.get_by_label("Model")).to_be_focused()
    expect(dialog.locator("#edit-error")).to_contain_text("The remix was not made: see “Model” above.")
    expect(dialog).to_be_visible()
    shot(page, "edit-error", full_page=False)
    # Nothing typed is lost: not on the error, not after closing and opening the panel again.
    expect(dialog.get_by_label("What the remix should show")).to_have_value(prompt)
    page.keyboard.press("Escape")
    dialog = open_editor(page, ltx_video["id"])
    expect(dialog.get_by_label("What the remix should show")).to_have_value(prompt)
    # A bad cut is refused by the server next to the field it names.
    dialog.get_by_role("radio", name="Re-cut").check()
    dialog.get_by_label("Start (seconds)").fill("0.8")
    dialog.get_by_label("End (seconds)").fill("0.5")
    dialog.get_by_role("button", name="Re-cut", exact=True).click()
    expect(dialog.locator("#edit-start-error")).to_contain_text("must be before end")

    # Make a still: its own job, followed here and shown in the panel.
    dialog.get_by_role("radio", name="Make a still").check()
    dialog.get_by_label("What the still should show").fill("the kite, still")
    dialog.get_by_label("Model").select_option("tiny-ltx")
    set_steps(dialog)
    dialog.get_by_role("button", name="Make a still", exact=True).click()
    still = dialog.locator("#edit-still img")
    expect(still).to_be_visible(timeout=JOB_TIMEOUT_MS)
    page.wait_for_function("img => img.complete && img.naturalWidth === 128", arg=still.element_handle())
    expect(dialog.get_by_role("link", name="Download the still")).to_be_visible()


def test_storyboard_two_cards_render_and_delete(server: RemoteServer, page, ltx_video: dict) -> None:
    open_studio(page, server)
    # Loaded newest first, every video's parents are still named once they arrive.
    expect(page.locator("#gallery-list .lineage code")).to_have_count(0)
    # "Add to storyboard" on a video opens the editor with it as a video card.
    card_by_id(page, ltx_video["id"]).get_by_role("button", name=re.compile("^Add to storyboard")).click()
    dialog = page.locator("dialog#storyboard")
    expect(dialog).to_be_visible()
    cards = dialog.locator("#sb-cards > li")
    expect(cards).to_have_count(1)
    expect(dialog.get_by_label("Video of card 1")).to_have_value(ltx_video["id"])
    dialog.get_by_label("Length (seconds)").fill("1")
    dialog.get_by_label("Width × height").fill(LTX_SIZE)
    dialog.get_by_label("Model").select_option("tiny-ltx")
    set_steps(dialog)

    # A text card goes after it; "Earlier" swaps the two (times included).
    dialog.get_by_role("button", name="Add text card").click()
    expect(cards).to_have_count(2)
    expect(dialog.get_by_label("What happens of card 2")).to_be_focused()
    page.keyboard.type("the kite climbs into the clouds")
    expect(dialog.get_by_label("At (seconds) for card 2")).to_have_value("0.25")
    dialog.get_by_role("button", name="Move card 2 earlier").click()
    expect(cards.nth(0)).to_contain_text("Text")
    expect(dialog.get_by_label("What happens of card 1")).to_have_value("the kite climbs into the clouds")
    expect(dialog.get_by_label("At (seconds) for card 1")).to_have_value("0")
    expect(dialog.get_by_role("button", name="Move card 1 earlier")).to_be_disabled()
    # An edited time moves the video card to its place; a third card is added and removed.
    dialog.get_by_label("At (seconds) for card 2").fill("0.5")
    dialog.get_by_label("At (seconds) for card 2").press("Tab")
    dialog.get_by_role("button", name="Add image card").click()
    expect(cards).to_have_count(3)
    expect(dialog.locator("#sb-timeline .segment")).to_have_count(3)
    page.set_viewport_size({"width": 1280, "height": 1300})
    shot(page, "storyboard", full_page=False)
    page.set_viewport_size({"width": 1280, "height": 900})
    dialog.get_by_role("button", name="Remove card 3").click()
    expect(cards).to_have_count(2)

    dialog.get_by_role("button", name="Render storyboard").click()
    expect(dialog).to_be_hidden()
    board = newest_card(page, "Storyboard with")
    expect(board.locator(".lineage")).to_contain_text(SOURCE_PROMPT)
    expect(board.locator(".meta")).to_contain_text("1 s")

    # The board is kept for another try, and the result can be deleted like any video.
    page.get_by_role("button", name="Storyboard", exact=True).click()
    expect(cards).to_have_count(2)
    page.keyboard.press("Escape")
    video_id = board.get_attribute("data-id")
    delete = board.get_by_role("button", name=re.compile("^Delete"))
    delete.click()
    delete.click()
    expect(board).to_have_count(0)
    assert httpx.get(f"{server.url}/v1/videos/{video_id}").status_code == 404


def test_edit_panel_fits_a_narrow_window(server: RemoteServer, browser, ltx_video: dict) -> None:
    context = browser.new_context(viewport={"width": 380, "height": 800})
    try:
        page = context.new_page()
        open_studio(page, server)
        dialog = open_editor(page, ltx_video["id"])
        dialog.get_by_role("radio", name="Re-cut").check()
        overflow = dialog.evaluate("d => d.scrollWidth - d.clientWidth")
        assert overflow <= 0, f"the editing panel is {overflow}px wider than itself in a 380px window"
        shot(page, "edit-narrow", full_page=False)
    finally:
        context.close()
