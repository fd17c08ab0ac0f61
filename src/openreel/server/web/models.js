// The models view: every model the server knows, what it can do, its licence, whether it fits this
// machine and what it takes on disk; download (a job on the server, so closing the page or
// restarting the server does not lose it), cancel, delete. A <dialog>, like the details panel.

import { api, ApiError } from "./api.js";
import { el, modeLabel, sortModes } from "./dom.js";

const POLL_MS = 1000;

export function formatBytes(bytes) {
  const value = Number(bytes) || 0;
  if (value < 1024) return `${value} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let scaled = value / 1024;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  return `${scaled.toFixed(scaled < 10 ? 1 : 0)} ${units[unit]}`;
}

// onChanged(): a model was downloaded or deleted (the composer's picker may want to know).
export function createModels({ onChanged = () => {} } = {}) {
  const dialog = document.getElementById("models");
  const list = document.getElementById("models-list");
  const status = document.getElementById("models-status");
  const showTiny = document.getElementById("models-tiny");
  let cards = [];
  let timer = null;

  document.getElementById("models-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => stopPolling());
  showTiny.addEventListener("change", () => render());

  function say(message) {
    status.textContent = message;
  }

  function stopPolling() {
    clearTimeout(timer);
    timer = null;
  }

  async function refresh() {
    try {
      cards = (await api.models()).data;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      say(`The list of models could not be read: ${error.message}`);
      return;
    }
    render();
    stopPolling();
    if (dialog.open && cards.some((card) => card.download?.status === "downloading")) {
      timer = setTimeout(refresh, POLL_MS);
    }
  }

  // Tiny test models make noise; they stay out of the way unless asked for or already built (and
  // one shown once stays, so deleting it does not pull the card from under the keyboard).
  const kept = new Set();
  function visible() {
    const shown = cards.filter((card) => showTiny.checked || !card.random_weights || card.downloaded || card.download || kept.has(card.id));
    for (const card of shown) if (card.random_weights) kept.add(card.id);
    return shown;
  }

  // Rebuilding the list would drop the keyboard focus: keep it on the same button of the same model.
  function render() {
    const active = document.activeElement;
    const focusModel = active?.closest?.("[data-model]")?.dataset.model;
    const focusAction = active?.dataset?.action;
    list.replaceChildren(...visible().map(modelCard));
    if (focusModel && dialog.contains(active) === false) {
      const again = list.querySelector(`[data-model="${CSS.escape(focusModel)}"] [data-action="${focusAction}"]`);
      if (again) again.focus();
      else focusCard(focusModel);
    }
  }

  // The keyboard onto a model's first action (its heading when it has none).
  function focusCard(modelId) {
    const node = list.querySelector(`[data-model="${CSS.escape(modelId)}"]`);
    (node?.querySelector("[data-action]") || node?.querySelector("h3"))?.focus();
    return node;
  }

  function modelCard(card) {
    const download = card.download;
    const state = download?.status === "downloading" ? "downloading" : card.downloaded ? "downloaded" : "missing";
    const titleId = `model-${card.id}-title`;
    const node = el(
      "li",
      { class: "model-card", "data-model": card.id, "data-state": state, "aria-labelledby": titleId },
      el("h3", { id: titleId, tabindex: "-1" }, card.title, " ", el("code", {}, card.id)),
      el("p", { class: "model-description" }, card.description),
      facts(card, state),
    );
    if (state === "downloading") node.append(progressView(card, download));
    if (download && ["failed", "cancelled"].includes(download.status) && !card.downloaded) node.append(...downloadError(download));
    node.append(actions(card, state));
    return node;
  }

  function facts(card, state) {
    const list = el("dl", { class: "model-facts" });
    const onDisk = state === "downloaded" ? formatBytes(card.size_on_disk_bytes) : "Not downloaded";
    const add = (term, ...value) => list.append(el("dt", {}, term), el("dd", {}, ...value));
    add("On disk", card.random_weights && state === "downloaded" ? `${onDisk} (tiny test model: its videos are noise)` : onDisk);
    add(
      "This machine",
      el("span", { class: card.fits ? "fits" : "too-big" }, card.fits ? "Fits" : "Too big"),
      ` · needs about ${card.memory_gib} GiB`,
    );
    add("Makes", sortModes(card.modes).map(modeLabel).join(", "));
    add("Licence", card.licence_url ? el("a", { href: card.licence_url, target: "_blank", rel: "noopener" }, card.licence) : card.licence);
    return list;
  }

  // A sentence a person can act on; the server's paragraph (written for a terminal) folded away.
  function downloadError(download) {
    if (download.status === "cancelled") return [el("p", { class: "download-error" }, download.error || "Cancelled.")];
    const sentence =
      download.error_code === "weights_missing"
        ? "The download failed: the server could not reach the Hugging Face hub, or has no room for the files."
        : "The download failed.";
    const parts = [el("p", { class: "download-error" }, sentence)];
    if (download.error) {
      const summary = el("summary", {}, "What the server said");
      parts.push(el("details", { class: "download-error-details" }, summary, el("p", {}, download.error)));
    }
    return parts;
  }

  function progressView(card, download) {
    const bar = el("progress", { "aria-label": `Download of ${card.id}` });
    const total = download.total_bytes;
    let text = `${formatBytes(download.bytes_done)} so far`;
    if (total) {
      bar.max = total;
      bar.value = Math.min(download.bytes_done, total);
      text = `${formatBytes(download.bytes_done)} of ${formatBytes(total)} (${Math.floor((100 * download.bytes_done) / total)}%)`;
    }
    return el("div", { class: "progress-area" }, bar, el("p", { class: "progress-text" }, `Downloading: ${text}`));
  }

  function button(label, action, card, run, extra = {}) {
    return el(
      "button",
      { type: "button", class: "secondary small", "data-action": action, "aria-label": `${label}: ${card.id}`, ...extra, onclick: (event) => run(card, event.currentTarget) },
      label,
    );
  }

  function actions(card, state) {
    const row = el("div", { class: "card-actions" });
    if (state === "downloading") row.append(button("Cancel download", "cancel", card, cancel));
    else if (state === "missing") row.append(button(card.random_weights ? "Build" : "Download", "download", card, download));
    if (state === "downloaded") row.append(button("Delete", "delete", card, remove, { class: "danger small" }));
    return row;
  }

  // A disabled button drops the keyboard focus: once the list is redrawn, it goes back to the model.
  async function act(card, button, work, done) {
    if (button) button.disabled = true;
    try {
      say((await work()) || done);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      say(error.message);
    }
    await refresh();
    if (dialog.open) focusCard(card.id)?.scrollIntoView({ block: "nearest" });
  }

  function download(card, button) {
    return act(card, button, () => api.downloadModel(card.id).then(() => null), `Downloading ${card.id} on the server.`);
  }

  function cancel(card, button) {
    return act(card, button, () => api.cancelModelDownload(card.id).then(() => null), `The download of ${card.id} was stopped.`);
  }

  // Two presses, as for a video: the first asks, the second deletes.
  async function remove(card, button) {
    if (button.dataset.confirming !== "yes") {
      button.dataset.confirming = "yes";
      button.textContent = "Press again to delete";
      say(`Press again to delete the weights of ${card.id} from the server.`);
      return;
    }
    await act(card, button, async () => {
      const { freed_bytes: freed } = await api.removeModel(card.id);
      onChanged();
      return `Deleted ${card.id}: ${formatBytes(freed)} freed.`;
    });
  }

  // open(): the view; open(id, {download: true}): straight to one model, its download started.
  async function open(modelId = null, { download: start = false } = {}) {
    if (!dialog.open) dialog.showModal();
    say("");
    await refresh();
    const card = modelId && cards.find((item) => item.id === modelId);
    if (!card) return;
    if (card.random_weights) showTiny.checked = true;
    if (start && !card.downloaded && card.download?.status !== "downloading") {
      await act(card, null, () => api.downloadModel(card.id).then(() => null), `Downloading ${card.id} on the server.`);
    }
    render();
    focusCard(modelId)?.scrollIntoView({ block: "center" });
  }

  return { open, refresh };
}
