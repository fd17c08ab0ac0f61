// openreel studio: wires the composer, the gallery, the details panel and the API-key prompt.
// Plain ES modules served as static files: no build step, no dependencies.

import { api, ApiError, apiKey, onAuthNeeded } from "./api.js";
import { createComposer } from "./composer.js";
import { createDetails, settingsFromRecipe, settingsFromVideo } from "./details.js";
import { createEditor } from "./edit.js";
import { createGallery } from "./gallery.js";
import { createModels } from "./models.js";
import { createStoryboard } from "./storyboard.js";

const banner = document.getElementById("banner");
const keyButton = document.getElementById("key-button");

function showBanner(message) {
  banner.textContent = message || "";
  banner.hidden = !message;
}

// "Use settings again": the recipe when there is one (exact seed and size), else the Video object.
async function reuse(video, variation) {
  let settings = settingsFromVideo(video, variation);
  if (video.status === "completed") {
    try {
      settings = settingsFromRecipe(await api.recipe(video.id, variation), variation);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
    }
  }
  composer.fill(settings, { announce: `Settings of ${video.id} loaded into the composer.` });
  document.getElementById("composer").scrollIntoView({ behavior: "smooth", block: "start" });
  composer.focus();
}

const details = createDetails({
  onReuse: reuse,
  onEdit: (video) => editor.open(video),
  describe: (id) => gallery.describe(id),
  show: (id) => gallery.reveal(id),
});
const gallery = createGallery({
  onReuse: reuse,
  onDetails: (video, variation, actions) => details.open(video, variation, actions),
  onEdit: (video, tool) => editor.open(video, tool),
  onStoryboard: (video) => storyboard.open(video),
});
const composer = createComposer({ onCreated: (video) => gallery.add(video) });
// A video made by an edit or a storyboard: into the gallery, and the keyboard onto its card.
function made(video) {
  gallery.add(video);
  gallery.reveal(video.id);
}
const editor = createEditor({ videos: () => gallery.videos(), onCreated: made });
const storyboard = createStoryboard({ videos: () => gallery.videos(), onCreated: made });
document.getElementById("storyboard-button").addEventListener("click", () => storyboard.open());

// The models view, from the header, or from a failed video's "Download it" (errors.js).
const models = createModels({ onChanged: refreshCatalog });
document.getElementById("models-button").addEventListener("click", () => models.open());
document.addEventListener("openreel:download-model", (event) => models.open(event.detail.model, { download: true }));

// What is downloaded changed: the pickers say so without a reload (the composer keeps what was typed).
async function refreshCatalog() {
  try {
    const [styles, catalog, loras] = await Promise.all([api.styles(), api.models(), api.loras()]);
    composer.setCatalog(styles, catalog, loras);
    editor.setCatalog(catalog);
    storyboard.setCatalog(catalog);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
  }
}

// --- the API key: asked for when the server answers 401, kept in this browser ---

const keyDialog = document.getElementById("key-dialog");
const keyInput = document.getElementById("api-key");
const keyError = document.getElementById("key-error");
let checkingKey = false;

function askForKey(message) {
  keyButton.hidden = false;
  if (checkingKey) return; // the key being tried was refused: the submit handler says so
  document.getElementById("key-message").textContent = apiKey.get()
    ? `The key saved in this browser was not accepted (the server says: ${message}).`
    : `Only people with a key can use it, so enter yours below (the server says: ${message}).`;
  keyError.hidden = true;
  document.getElementById("key-forget").hidden = !apiKey.get();
  if (!keyDialog.open) keyDialog.showModal();
  keyInput.focus();
}

onAuthNeeded(askForKey);

document.getElementById("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (!key) {
    keyError.textContent = "Paste the key first.";
    keyError.hidden = false;
    return;
  }
  const previous = apiKey.get();
  apiKey.set(key);
  checkingKey = true;
  try {
    await api.list({ limit: 1 });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) {
      if (previous) apiKey.set(previous);
      else apiKey.clear();
      keyError.textContent = `That key was not accepted: ${error.message}`;
      keyError.hidden = false;
      keyInput.focus();
      return;
    }
  } finally {
    checkingKey = false;
  }
  keyInput.value = "";
  keyDialog.close();
  gallery.reset();
  await boot();
});

document.getElementById("key-forget").addEventListener("click", () => {
  apiKey.clear();
  keyInput.value = "";
  document.getElementById("key-message").textContent = "The saved key was removed from this browser.";
  document.getElementById("key-forget").hidden = true;
  gallery.reset();
});

keyButton.addEventListener("click", () => {
  document.getElementById("key-message").textContent = apiKey.get()
    ? "A key is saved in this browser. Enter another to replace it."
    : "Enter an API key to use this server.";
  keyError.hidden = true;
  document.getElementById("key-forget").hidden = !apiKey.get();
  keyDialog.showModal();
});

// --- keyboard shortcuts: never while typing in a field, never over an open panel ---

const shortcutsDialog = document.getElementById("shortcuts");
document.getElementById("shortcuts-button").addEventListener("click", () => shortcutsDialog.showModal());
document.getElementById("shortcuts-close").addEventListener("click", () => shortcutsDialog.close());

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || target.closest("input, textarea, select"));
}

const SHORTCUTS = {
  "/": () => document.getElementById("gallery-search").focus(),
  n: () => composer.focus(),
  s: () => document.getElementById("settings-button").click(),
  f: () => {
    const tile = document.activeElement?.closest?.("#gallery-list > li.card");
    if (tile) gallery.toggleFavourite(tile.dataset.id);
  },
  "?": () => shortcutsDialog.showModal(),
};

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  if (typing(event.target) || document.querySelector("dialog[open]")) return;
  const action = SHORTCUTS[event.key];
  if (!action) return;
  event.preventDefault(); // "/" would otherwise start the browser's quick find
  action();
});

// --- start ---

async function showServer() {
  try {
    const health = await api.health();
    const workers = health.workers === 1 ? "1 worker" : `${health.workers} workers`;
    document.getElementById("server-info").textContent = `openreel ${health.version} · ${workers} · ${health.database}`;
  } catch {
    // The header line is a nicety; the gallery reports real trouble.
  }
}

async function boot() {
  keyButton.hidden = !apiKey.get();
  try {
    const [styles, catalog, loras] = await Promise.all([api.styles(), api.models(), api.loras()]);
    composer.setCatalog(styles, catalog, loras);
    editor.setCatalog(catalog);
    storyboard.setCatalog(catalog);
    showBanner("");
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) return; // askForKey is showing; boot runs again once a key works
    showBanner(`The studio could not start: ${error.message}`);
    return;
  }
  await gallery.refresh();
  document.body.dataset.ready = "true"; // for tests and for people: the page is usable now
}

showServer();
boot();
