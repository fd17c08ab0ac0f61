// The gallery: every job of this user, newest first, kept live without reloading the page.
//
// GET /v1/videos fills it (and refreshes it now and then, for jobs made elsewhere, e.g. by the
// openai SDK); each job still being made is polled on its own with GET /v1/videos/{id}, waiting
// as long as the server's openai-poll-after-ms header says. Cards are updated in place and never
// moved, because moving a <video> element in the DOM stops its playback.
//
// Each card is a tile in a grid: its poster (the thumbnail) plays the MP4 muted while the pointer
// is over it or the keyboard is on it, unless the person asked for reduced motion; a click or
// Enter opens the viewer (details.js). Filters and the search hide tiles, never remove them.

import { VIDEO_ACTIONS } from "./actions.js";
import { api, ApiError, forgetMedia, mediaUrl } from "./api.js";
import { el, formatDuration, formatEta, formatSeconds, formatTime, stageLabel } from "./dom.js";
import { errorView } from "./errors.js";
import { forgetFavourite, isFavourite, setFavourite } from "./favourites.js";
import { lineage } from "./lineage.js";

const PAGE_SIZE = 50;
const DEFAULT_POLL_MS = 1000;
const LIST_REFRESH_MS = 15000;
const ACTIVE = new Set(["queued", "in_progress"]);
const REDUCED_MOTION = window.matchMedia("(prefers-reduced-motion: reduce)");

export function createGallery({ onReuse, onDetails, onEdit, onStoryboard }) {
  const list = document.getElementById("gallery-list");
  const empty = document.getElementById("gallery-empty");
  const errorBox = document.getElementById("gallery-error");
  const olderButton = document.getElementById("older-button");
  const noMatch = document.getElementById("gallery-nomatch");
  const count = document.getElementById("gallery-count");
  const filters = {
    search: document.getElementById("gallery-search"),
    model: document.getElementById("filter-model"),
    status: document.getElementById("filter-status"),
    favourites: document.getElementById("filter-favourites"),
  };
  const cards = new Map(); // id -> {node, video, variation, parts}
  const timers = new Map(); // id -> timeout of its next poll
  let oldestLoaded = null;
  let refreshTimer = null;

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  function newer(a, b) {
    // Order of the list: newest first; ids break ties between jobs made in the same second.
    return a.created_at !== b.created_at ? a.created_at > b.created_at : a.id > b.id;
  }

  // --- loading ---

  async function refresh() {
    clearTimeout(refreshTimer);
    try {
      const page = await api.list({ order: "desc", limit: PAGE_SIZE });
      const seen = new Set(page.data.map((video) => video.id));
      const covered = page.has_more && page.data.length ? page.data[page.data.length - 1] : null;
      // A card the page should contain but does not was deleted elsewhere.
      for (const [id, card] of cards) {
        if (!seen.has(id) && (!covered || newer(card.video, covered))) dropCard(id);
      }
      for (const video of page.data) upsert(video);
      if (oldestLoaded === null || !page.has_more) {
        oldestLoaded = page.has_more ? page.last_id : null;
        olderButton.hidden = !page.has_more;
      }
      showError("");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status !== 401) showError(`The gallery could not be loaded: ${error.message}`);
    } finally {
      updateEmpty();
      refreshTimer = setTimeout(refresh, LIST_REFRESH_MS);
    }
  }

  async function loadOlder() {
    if (!oldestLoaded) return;
    olderButton.disabled = true;
    try {
      const page = await api.list({ order: "desc", limit: PAGE_SIZE, after: oldestLoaded });
      for (const video of page.data) upsert(video);
      oldestLoaded = page.has_more ? page.last_id : null;
      olderButton.hidden = !page.has_more;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showError(`Older videos could not be loaded: ${error.message}`);
    } finally {
      olderButton.disabled = false;
    }
  }

  function schedulePoll(id, ms) {
    clearTimeout(timers.get(id));
    timers.set(id, setTimeout(() => poll(id), ms));
  }

  async function poll(id) {
    timers.delete(id);
    if (!cards.has(id)) return;
    try {
      const { video, pollAfterMs } = await api.retrieve(id);
      upsert(video);
      if (ACTIVE.has(video.status)) schedulePoll(id, pollAfterMs ?? DEFAULT_POLL_MS);
      showError("");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 404) return dropCard(id);
      if (error.status === 401) return; // the key dialog is open; the gallery reloads after it
      showError(`Lost contact with the server (${error.message}); trying again.`);
      schedulePoll(id, 5000);
    }
  }

  // --- cards ---

  function upsert(video) {
    let card = cards.get(video.id);
    if (!card) {
      card = buildCard(video);
      cards.set(video.id, card);
      // The first card on the page that is older than this one (DOM order is the list's order).
      const before = [...list.children].find((node) => {
        const other = cards.get(node.dataset.id);
        return other && other !== card && other.video && newer(video, other.video);
      });
      list.insertBefore(card.node, before || null);
    }
    const created = !card.video;
    const wasActive = card.video && ACTIVE.has(card.video.status);
    card.video = video;
    render(card);
    // The list comes newest first, so a video's parents often arrive after it.
    if (created) for (const other of cards.values()) if (other !== card) renderLineage(other);
    if (ACTIVE.has(video.status) && !timers.has(video.id)) schedulePoll(video.id, wasActive ? DEFAULT_POLL_MS : 0);
    updateEmpty();
  }

  function dropCard(id) {
    const card = cards.get(id);
    clearTimeout(timers.get(id));
    timers.delete(id);
    if (!card) return;
    const video = card.node.querySelector("video");
    if (video) video.removeAttribute("src");
    card.node.remove();
    cards.delete(id);
    forgetMedia(id);
    forgetFavourite(id);
    updateEmpty();
    for (const other of cards.values()) renderLineage(other); // a parent may have gone
  }

  function updateEmpty() {
    empty.hidden = cards.size > 0;
    applyFilters();
  }

  // --- filters and search: they hide tiles, so a playing video or a focused button survives ---

  const modelOfVideo = (video) => video.openreel?.model || video.model || "";

  function matches(video) {
    const words = filters.search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const prompt = (video.prompt || "").toLowerCase();
    if (!words.every((word) => prompt.includes(word))) return false;
    if (filters.model.value && modelOfVideo(video) !== filters.model.value && video.model !== filters.model.value) return false;
    const status = filters.status.value;
    if (status === "active" && !ACTIVE.has(video.status)) return false;
    if (status && status !== "active" && video.status !== status) return false;
    if (filters.favourites.getAttribute("aria-pressed") === "true" && !isFavourite(video.id)) return false;
    return true;
  }

  function filtering() {
    return Boolean(
      filters.search.value.trim() || filters.model.value || filters.status.value ||
        filters.favourites.getAttribute("aria-pressed") === "true",
    );
  }

  function applyFilters() {
    let shown = 0;
    for (const card of cards.values()) {
      const visible = !card.video || matches(card.video);
      card.node.hidden = !visible;
      if (visible) shown += 1;
      else stopPreview(card);
    }
    syncModelFilter();
    noMatch.hidden = !(cards.size > 0 && shown === 0);
    const total = cards.size === 1 ? "1 video" : `${cards.size} videos`;
    count.textContent = cards.size === 0 ? "" : filtering() ? `(${shown} of ${total})` : `(${total})`;
  }

  // The model filter offers the models the loaded videos were made with.
  function syncModelFilter() {
    const models = [...new Set([...cards.values()].map((card) => card.video && modelOfVideo(card.video)).filter(Boolean))].sort();
    const key = models.join("|");
    if (filters.model.dataset.key === key) return;
    filters.model.dataset.key = key;
    const chosen = filters.model.value;
    filters.model.replaceChildren(
      el("option", { value: "" }, "All models"),
      ...models.map((model) => el("option", { value: model }, model)),
    );
    if (chosen && !models.includes(chosen)) filters.model.append(el("option", { value: chosen }, chosen));
    filters.model.value = chosen;
  }

  function clearFilters() {
    filters.search.value = "";
    filters.model.value = "";
    filters.status.value = "";
    filters.favourites.setAttribute("aria-pressed", "false");
    applyFilters();
  }

  filters.search.addEventListener("input", applyFilters);
  filters.model.addEventListener("change", applyFilters);
  filters.status.addEventListener("change", applyFilters);
  filters.favourites.addEventListener("click", () => {
    const on = filters.favourites.getAttribute("aria-pressed") !== "true";
    filters.favourites.setAttribute("aria-pressed", String(on));
    applyFilters();
  });
  document.getElementById("filter-clear").addEventListener("click", () => {
    clearFilters();
    filters.search.focus();
  });

  // --- favourites ---

  function renderFavourite(card) {
    const on = isFavourite(card.video.id);
    const button = card.parts.favourite;
    button.setAttribute("aria-pressed", String(on));
    button.setAttribute("aria-label", `Favourite: ${card.video.prompt || card.video.id}`.slice(0, 120));
    button.title = on ? "Remove from favourites" : "Add to favourites";
  }

  function toggleFavourite(id) {
    const card = cards.get(id);
    if (!card?.video) return;
    setFavourite(id, !isFavourite(id));
    renderFavourite(card);
    applyFilters();
  }

  // --- hover to play: muted, from the start, stopped when the pointer or keyboard leaves ---

  function startPreview(card) {
    if (REDUCED_MOTION.matches) return;
    const player = card.parts.media.querySelector("video");
    if (!player || !player.getAttribute("src")) return;
    player.play().catch(() => {}); // a preview that cannot start is not an error worth showing
  }

  function stopPreview(card) {
    const player = card.parts.media.querySelector("video");
    if (!player || player.paused) return;
    player.pause();
    player.currentTime = 0;
  }

  function buildCard(video) {
    const parts = {
      media: el("button", { type: "button", class: "media" }),
      favourite: el("button", { type: "button", class: "favourite", "aria-pressed": "false" }, "★"),
      prompt: el("p", { class: "prompt" }),
      meta: el("p", { class: "meta muted" }),
      lineage: el("p", { class: "lineage" }),
      progress: el("progress", { max: "100" }),
      progressText: el("p", { class: "progress-text", "aria-live": "polite" }),
      error: el("div", { class: "video-error", role: "alert" }),
      variations: el("div", { class: "variation-picker", role: "group" }),
      actions: el("div", { class: "card-actions" }),
    };
    const node = el(
      "li",
      { class: "card", dataset: { id: video.id } },
      el("div", { class: "tile-media" }, parts.media, parts.favourite),
      el(
        "div",
        { class: "card-body" },
        parts.prompt,
        parts.meta,
        parts.lineage,
        el("div", { class: "progress-area" }, parts.progress, parts.progressText),
        parts.error,
        parts.variations,
        parts.actions,
      ),
    );
    const card = { node, video: null, variation: 1, parts, mediaKey: null, actionsKey: null };
    parts.media.addEventListener("click", () => onDetails(card.video, card.variation, viewerActions(card)));
    parts.favourite.addEventListener("click", () => toggleFavourite(card.video.id));
    node.addEventListener("mouseenter", () => startPreview(card));
    node.addEventListener("mouseleave", () => stopPreview(card));
    parts.media.addEventListener("focus", () => startPreview(card));
    parts.media.addEventListener("blur", () => stopPreview(card));
    // Enter on the tile itself (where reveal() puts the keyboard) opens it like a click.
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === node) parts.media.click();
    });
    return card;
  }

  function render(card) {
    const { video, parts, node } = card;
    node.dataset.status = video.status;
    const [width, height] = (video.size || "16x9").split("x").map(Number);
    node.style.setProperty("--aspect", `${width} / ${height}`);
    parts.prompt.textContent = video.prompt || "(no prompt)";
    const resolved = video.openreel?.model;
    const model = resolved && resolved !== video.model ? `${video.model} → ${resolved}` : video.model;
    parts.meta.textContent = [model, video.size, formatSeconds(video.seconds), formatTime(video.created_at)].join(" · ");
    parts.progress.setAttribute("aria-label", `Progress: ${video.prompt || video.id}`);
    parts.media.setAttribute("aria-label", `Open: ${video.prompt || video.id}`.slice(0, 120));
    renderFavourite(card);

    const info = video.openreel || {};
    const active = ACTIVE.has(video.status);
    parts.progress.hidden = !active;
    if (video.status === "queued") {
      parts.progress.removeAttribute("value"); // indeterminate while waiting
      const ahead = info.queue_position;
      parts.progressText.textContent =
        ahead === null || ahead === undefined
          ? "Waiting in the queue"
          : ahead === 0
            ? "Next in the queue"
            : `Waiting in the queue: ${ahead} ahead`;
    } else if (video.status === "in_progress") {
      parts.progress.value = video.progress;
      const bits = [stageLabel(info.stage)];
      if (info.total_steps) bits.push(`step ${info.step ?? 0} of ${info.total_steps}`);
      bits.push(`${video.progress}%`);
      const eta = formatEta(info.eta_seconds, video.progress);
      if (eta) bits.push(eta);
      // Which worker makes it: on a cluster, the machine and process to look at.
      if (info.worker) bits.push(`on ${info.worker}`);
      parts.progressText.textContent = bits.join(" · ");
    } else if (video.status === "completed") {
      const took = video.completed_at ? video.completed_at - video.created_at : null;
      parts.progressText.textContent = took === null ? "Done" : `Done in ${formatDuration(took)}`;
    } else {
      parts.progressText.textContent = "Failed";
    }
    parts.error.hidden = video.status !== "failed";
    // Rebuilt only when the error changes, so an open "Details" stays open across polls.
    const errorKey = video.status === "failed" ? JSON.stringify(video.error || {}) : "";
    if (card.errorKey !== errorKey) {
      card.errorKey = errorKey;
      parts.error.replaceChildren(...(errorKey ? errorView(video.error, video) : []));
    }

    renderVariations(card);
    renderMedia(card);
    renderActions(card);
    renderLineage(card);
  }

  // The name a video goes by in another's lineage: its prompt, shortened.
  function describe(id) {
    const video = cards.get(id)?.video;
    if (!video) return null;
    const text = video.prompt || id;
    return text.length > 40 ? `${text.slice(0, 39)}…` : text;
  }

  function renderLineage(card) {
    const { video, parts } = card;
    const line = lineage(video, { describe, show: reveal });
    const key = line ? line.map((part) => (typeof part === "string" ? part : part.textContent)).join("") : "";
    if (card.lineageKey === key) return;
    card.lineageKey = key;
    parts.lineage.hidden = !line;
    parts.lineage.replaceChildren(...(line || []));
  }

  // Bring a video's card into view and put the keyboard on it (a parent link, a new edit).
  function reveal(id) {
    const card = cards.get(id);
    if (!card) return false;
    if (card.node.hidden) clearFilters(); // a filtered-out video cannot be shown otherwise
    card.node.scrollIntoView({ behavior: "smooth", block: "nearest" });
    card.node.setAttribute("tabindex", "-1");
    card.node.focus({ preventScroll: true });
    card.node.classList.remove("flash");
    void card.node.offsetWidth; // restart the highlight's animation
    card.node.classList.add("flash");
    return true;
  }

  function outputsOf(video) {
    const outputs = video.openreel?.outputs || [];
    return outputs.length ? outputs : [{ variation: 1, seed: video.openreel?.seed ?? null }];
  }

  function renderVariations(card) {
    const { video, parts } = card;
    const outputs = video.status === "completed" ? outputsOf(video) : [];
    parts.variations.hidden = outputs.length < 2;
    if (outputs.length < 2) return;
    parts.variations.setAttribute("aria-label", "Variation");
    parts.variations.replaceChildren(
      el("span", { class: "muted" }, "Variation:"),
      ...outputs.map((output) =>
        el(
          "button",
          {
            type: "button",
            class: "small secondary",
            "aria-pressed": String(output.variation === card.variation),
            title: `seed ${output.seed}`,
            onclick: () => {
              card.variation = output.variation;
              render(card);
            },
          },
          String(output.variation),
        ),
      ),
    );
  }

  function renderMedia(card) {
    const { video, parts } = card;
    const key = `${video.status}:${card.variation}`;
    if (card.mediaKey === key) return; // progress updates must not rebuild a playing video
    card.mediaKey = key;
    if (video.status !== "completed") {
      const label = video.status === "failed" ? "✕" : video.status === "queued" ? "…" : "◐";
      parts.media.replaceChildren(el("div", { class: "placeholder", "aria-hidden": "true" }, label));
      return;
    }
    // No controls on a tile: it is a preview inside the button that opens the viewer, which has them.
    const player = el("video", {
      preload: "metadata",
      playsinline: true,
      loop: true,
      muted: true,
      "aria-label": `Video: ${video.prompt || video.id}`,
    });
    player.muted = true; // the attribute alone sets only defaultMuted once the element exists
    parts.media.replaceChildren(player);
    const variation = card.variation;
    // The poster first (small), then the video: with a key both come as blobs.
    mediaUrl(video.id, "thumbnail", variation)
      .then((url) => player.setAttribute("poster", url))
      .catch(() => {});
    mediaUrl(video.id, "video", variation)
      .then((url) => {
        if (card.mediaKey === key) player.src = url;
      })
      .catch((error) => {
        parts.media.replaceChildren(el("p", { class: "video-error" }, `The video could not be loaded: ${error.message}`));
        card.mediaKey = null;
      });
  }

  function renderActions(card) {
    const { video, parts } = card;
    const available = VIDEO_ACTIONS.filter((action) => action.available(video));
    const key = `${video.status}|${available.map((action) => action.id).join(",")}`;
    if (card.actionsKey === key) return; // keep focus on a button across progress updates
    card.actionsKey = key;
    const ctx = {
      get variation() {
        return card.variation;
      },
      details: () => onDetails(card.video, card.variation, viewerActions(card)),
      reuse: () => onReuse(card.video, card.variation),
      download: (button) => download(card, button),
      remove: (button) => remove(card, button),
      edit: (tool) => onEdit(card.video, tool),
      storyboard: () => onStoryboard(card.video),
    };
    parts.actions.replaceChildren(...available.map((action) => actionButton(card, action, ctx)));
  }

  function actionButton(card, action, ctx, { before = null } = {}) {
    const video = card.video;
    const label = typeof action.label === "function" ? action.label(video) : action.label;
    return el(
      "button",
      {
        type: "button",
        class: `small ${action.danger ? "danger" : "secondary"}`,
        dataset: { action: action.id },
        "aria-label": `${label}: ${video.prompt || video.id}`.slice(0, 120),
        onclick: (event) => {
          if (before) before(event.currentTarget);
          action.run(card.video, ctx, event.currentTarget);
        },
      },
      label,
    );
  }

  // The tile's actions that the viewer shows beside its own (it has "Use these settings again" and
  // "Edit this video"): built per opening, so they act on the variation being looked at.
  function viewerActions(card) {
    const ctx = {
      get variation() {
        return card.variation;
      },
      download: (button) => download(card, button),
      remove: (button) => remove(card, button),
      storyboard: () => onStoryboard(card.video),
    };
    const close = (button) => button.closest("dialog")?.close();
    return VIDEO_ACTIONS.filter((action) => ["download", "storyboard", "delete"].includes(action.id) && action.available(card.video)).map(
      (action) => actionButton(card, action, ctx, { before: action.id === "storyboard" ? close : null }),
    );
  }

  async function download(card, button) {
    button.disabled = true;
    try {
      const url = await mediaUrl(card.video.id, "video", card.variation);
      const link = el("a", { href: url, download: `${card.video.id}-${card.variation}.mp4`, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
    } catch (error) {
      showError(`The download failed: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  }

  // Two presses: the first asks, the second deletes (a dialog box would steal the keyboard focus).
  async function remove(card, button) {
    if (button.dataset.confirming !== "yes") {
      button.dataset.confirming = "yes";
      const original = button.textContent;
      button.textContent = "Press again to delete";
      setTimeout(() => {
        if (button.isConnected && button.dataset.confirming === "yes") {
          button.dataset.confirming = "";
          button.textContent = original;
        }
      }, 5000);
      return;
    }
    button.disabled = true;
    try {
      await api.remove(card.video.id);
      button.closest("dialog")?.close(); // deleted from the viewer: nothing left to look at
      const next = card.node.nextElementSibling || card.node.previousElementSibling;
      dropCard(card.video.id);
      // Keep the keyboard somewhere sensible once the card (and its focused button) is gone.
      (next?.querySelector("button") || document.getElementById("gallery-heading")).focus();
    } catch (error) {
      button.disabled = false;
      if (error instanceof ApiError && error.status === 404) return dropCard(card.video.id);
      card.parts.error.hidden = false;
      card.parts.error.textContent = `Not deleted: ${error.message}`;
    }
  }

  document.getElementById("refresh-button").addEventListener("click", refresh);
  olderButton.addEventListener("click", loadOlder);

  return {
    refresh,
    // A video just created: show it at once rather than at the next list refresh.
    add: (video) => upsert(video),
    reveal,
    describe,
    toggleFavourite,
    // Every video on the page, newest first: for the blend and storyboard pickers.
    videos: () => [...list.children].map((node) => cards.get(node.dataset.id)?.video).filter(Boolean),
    reset() {
      for (const id of [...cards.keys()]) dropCard(id);
      oldestLoaded = null;
    },
  };
}
