// The storyboard editor: a timeline of cards (text, an image, or a gallery video) placed at
// times, rendered as one clip by POST /v1/openreel/storyboard. Cards are kept in time order:
// "Earlier" and "Later" swap a card with its neighbour (times included), and an edited time
// moves the card to its place. The whole board is kept in this browser until "Start over".

import { api, ApiError } from "./api.js";
import { el, formatSeconds } from "./dom.js";
import { fieldErrors, fillModels, modelOf, numberText, plainError } from "./forms.js";

const BOARD_STORAGE = "openreel.storyboard";
const KINDS = { text: "Text", image: "Image", video: "Video" };
const IMAGE_TYPES = "image/png,image/jpeg,image/webp";

export function createStoryboard({ videos, onCreated }) {
  const dialog = document.getElementById("storyboard");
  const form = document.getElementById("storyboard-form");
  const $ = (id) => document.getElementById(id);
  const f = { seconds: $("sb-seconds"), size: $("sb-size"), model: $("sb-model"), seed: $("sb-seed"), steps: $("sb-steps") };
  const list = $("sb-cards");
  const timeline = $("sb-timeline");
  const status = $("sb-status");
  const announce = $("sb-announce");
  const cardsError = $("sb-cards-error");
  const errors = fieldErrors(form, $("sb-error"));
  let catalog = null;
  let cards = []; // [{key, kind, at, text, image, imageName, video}], in time order
  let nextKey = 1;

  // --- the board's length and the cards' times ---

  function total() {
    const value = Number(f.seconds.value || f.seconds.placeholder);
    return Number.isFinite(value) && value > 0 ? value : 4;
  }

  const round = (value) => Math.round(value * 100) / 100;

  // A new card goes after the last one: a quarter of the board later, and inside the board.
  function nextTime() {
    if (!cards.length) return 0;
    const last = Math.max(...cards.map((card) => card.at));
    const later = round(last + Math.max(total() / 4, 0.25));
    return later < total() ? later : round((last + total()) / 2);
  }

  function sortCards() {
    cards = cards.map((card, index) => [card, index]).sort((a, b) => a[0].at - b[0].at || a[1] - b[1]).map(([card]) => card);
  }

  // --- drafts ---

  function save() {
    const board = {
      settings: Object.fromEntries(Object.entries(f).map(([name, node]) => [name, node.value])),
      cards: cards.map(({ key, ...card }) => card),
    };
    try {
      localStorage.setItem(BOARD_STORAGE, JSON.stringify(board));
    } catch {
      // Too big for storage (large images) or refused: drop the images from the saved copy.
      try {
        board.cards = board.cards.map((card) => ({ ...card, image: null }));
        localStorage.setItem(BOARD_STORAGE, JSON.stringify(board));
      } catch {
        // The open editor still holds everything.
      }
    }
  }

  function load() {
    let board = null;
    try {
      board = JSON.parse(localStorage.getItem(BOARD_STORAGE) || "null");
    } catch {
      board = null;
    }
    if (!board) return;
    for (const [name, value] of Object.entries(board.settings || {})) if (f[name] && name !== "model") f[name].value = value ?? "";
    cards = (board.cards || []).map((card) => ({ ...card, key: nextKey++ }));
    if (board.settings?.model) f.model.dataset.wanted = board.settings.model;
  }

  // --- drawing ---

  function draw({ focus = null } = {}) {
    $("sb-empty").hidden = cards.length > 0;
    list.replaceChildren(...cards.map((card, index) => cardItem(card, index)));
    drawTimeline();
    if (focus) {
      const [key, part] = focus;
      const target = list.querySelector(`[data-key="${key}"] [data-part="${part}"]`);
      if (target && !target.disabled) target.focus();
      else list.querySelector(`[data-key="${key}"] [data-part="at"]`)?.focus();
    }
    save();
  }

  function drawTimeline() {
    const length = total();
    const pieces = cards.map((card, index) => {
      const start = Math.min(card.at, length);
      const end = Math.min(index + 1 < cards.length ? cards[index + 1].at : length, length);
      const piece = el(
        "div",
        { class: `segment kind-${card.kind}`, title: `Card ${index + 1}: ${KINDS[card.kind]} at ${formatSeconds(card.at)}` },
        el("span", {}, `${index + 1}`),
      );
      piece.style.left = `${(start / length) * 100}%`;
      piece.style.width = `${Math.max(0, ((end - start) / length) * 100)}%`;
      return piece;
    });
    const ticks = el("div", { class: "ticks" }, el("span", {}, "0 s"), el("span", {}, formatSeconds(length)));
    timeline.replaceChildren(el("div", { class: "lane" }, ...pieces), ticks);
  }

  function cardItem(card, index) {
    const number = index + 1;
    const id = (part) => `sb-card-${card.key}-${part}`;
    const at = el("input", {
      id: id("at"),
      type: "number",
      min: "0",
      step: "any",
      value: String(card.at),
      dataset: { part: "at" },
      "aria-describedby": `${id("at")}-error`,
    });
    at.addEventListener("input", () => {
      const value = Number(at.value);
      if (at.value !== "" && Number.isFinite(value)) card.at = value;
      drawTimeline();
      save();
    });
    // A committed time puts the card in its place on the timeline.
    at.addEventListener("change", () => {
      const before = cards.indexOf(card);
      sortCards();
      if (cards.indexOf(card) !== before) {
        draw({ focus: [card.key, "at"] });
        say(`Card moved to place ${cards.indexOf(card) + 1}, at ${formatSeconds(card.at)}.`);
      }
    });

    const content = contentField(card, id, number);
    const move = (delta, label, part) =>
      el(
        "button",
        {
          type: "button",
          class: "small secondary",
          dataset: { part },
          disabled: !cards[index + delta],
          "aria-label": `Move card ${number} ${label.toLowerCase()}`,
          onclick: () => swap(card, delta, part),
        },
        label,
      );
    return el(
      "li",
      { class: `sb-card kind-${card.kind}`, dataset: { key: String(card.key) } },
      el("div", { class: "sb-card-head" }, el("span", { class: "badge" }, `${number}`), el("strong", {}, KINDS[card.kind])),
      el(
        "div",
        { class: "field sb-at" },
        el("label", { for: id("at") }, "At (seconds)", el("span", { class: "visually-hidden" }, ` for card ${number}`)),
        at,
        el("p", { class: "field-error", id: `${id("at")}-error`, hidden: true }),
      ),
      content,
      el(
        "div",
        { class: "sb-card-actions" },
        move(-1, "Earlier", "earlier"),
        move(1, "Later", "later"),
        el(
          "button",
          { type: "button", class: "small danger", dataset: { part: "remove" }, "aria-label": `Remove card ${number}`, onclick: () => remove(card) },
          "Remove",
        ),
      ),
    );
  }

  function contentField(card, id, number) {
    const control = id("content");
    const error = el("p", { class: "field-error", id: `${control}-error`, hidden: true });
    const label = (text) => el("label", { for: control }, text, el("span", { class: "visually-hidden" }, ` of card ${number}`));
    if (card.kind === "text") {
      const area = el("textarea", { id: control, rows: "2", dataset: { part: "content" }, placeholder: "The kite climbs into the clouds", "aria-describedby": `${control}-error` });
      area.value = card.text || "";
      area.addEventListener("input", () => {
        card.text = area.value;
        save();
      });
      return el("div", { class: "field sb-content" }, label("What happens"), area, error);
    }
    if (card.kind === "image") {
      const input = el("input", { id: control, type: "file", accept: IMAGE_TYPES, dataset: { part: "content" }, "aria-describedby": `${control}-error` });
      const preview = card.image ? el("img", { src: card.image, alt: `Image of card ${number}` }) : null;
      input.addEventListener("change", () => {
        const file = input.files[0];
        if (!file) return;
        const reader = new FileReader();
        reader.addEventListener("load", () => {
          card.image = reader.result;
          card.imageName = file.name;
          draw({ focus: [card.key, "content"] });
        });
        reader.readAsDataURL(file);
      });
      return el(
        "div",
        { class: "field sb-content" },
        label("Image"),
        el("div", { class: "sb-image" }, preview, input, card.imageName ? el("span", { class: "muted" }, card.imageName) : null),
        error,
      );
    }
    const select = el("select", { id: control, dataset: { part: "content" }, "aria-describedby": `${control}-error` });
    const finished = videos().filter((video) => video.status === "completed");
    select.append(el("option", { value: "" }, finished.length ? "Choose a video" : "No finished videos yet"));
    for (const video of finished) {
      const text = video.prompt || video.id;
      select.append(el("option", { value: video.id }, `${text.length > 48 ? `${text.slice(0, 47)}…` : text} · ${formatSeconds(video.seconds)}`));
    }
    if (card.video && !finished.some((video) => video.id === card.video)) select.append(el("option", { value: card.video }, `${card.video} (not in the gallery)`));
    select.value = card.video || "";
    select.addEventListener("change", () => {
      card.video = select.value;
      save();
    });
    return el("div", { class: "field sb-content" }, label("Video"), select, error);
  }

  function say(message) {
    announce.textContent = message;
  }

  // --- editing the board ---

  function add(kind, extra = {}) {
    const card = { key: nextKey++, kind, at: nextTime(), text: "", image: null, imageName: "", video: "", ...extra };
    cards.push(card);
    sortCards();
    draw({ focus: [card.key, "content"] });
    say(`${KINDS[kind]} card added at ${formatSeconds(card.at)}.`);
    return card;
  }

  function swap(card, delta, part) {
    const index = cards.indexOf(card);
    const other = cards[index + delta];
    if (!other) return;
    [card.at, other.at] = [other.at, card.at];
    cards[index] = other;
    cards[index + delta] = card;
    draw({ focus: [card.key, part] });
    say(`Card moved to place ${index + delta + 1}, at ${formatSeconds(card.at)}.`);
  }

  function remove(card) {
    const index = cards.indexOf(card);
    cards.splice(index, 1);
    const neighbour = cards[index] || cards[index - 1];
    draw({ focus: neighbour ? [neighbour.key, "remove"] : null });
    if (!neighbour) $("sb-add-text").focus();
    say(`Card ${index + 1} removed.`);
  }

  // --- rendering ---

  function cardControl(index, part) {
    const card = cards[index];
    return card ? list.querySelector(`[data-key="${card.key}"] [data-part="${part}"]`) : null;
  }

  function body() {
    if (!cards.length) throw Object.assign(new Error("Add a text card first: it says what happens."), { list: true });
    const out = cards.map((card, index) => {
      const base = { at: card.at };
      if (card.kind === "text") {
        if (!card.text?.trim()) throw Object.assign(new Error("Write what happens, or remove the card."), { control: cardControl(index, "content") });
        return { ...base, text: card.text.trim() };
      }
      if (card.kind === "image") {
        if (!card.image) throw Object.assign(new Error("Choose an image, or remove the card."), { control: cardControl(index, "content") });
        return { ...base, image_url: card.image };
      }
      if (!card.video) throw Object.assign(new Error("Choose a video, or remove the card."), { control: cardControl(index, "content") });
      return { ...base, video_id: card.video };
    });
    const request = { cards: out };
    const seconds = numberText(f.seconds.value);
    if (seconds !== null) request.seconds = seconds;
    const size = f.size.value.replace(/\s+/g, "").replace("×", "x");
    if (size) request.size = size;
    if (f.model.value) request.model = f.model.value;
    for (const name of ["seed", "steps"]) {
      const text = numberText(f[name].value);
      if (text !== null) request[name] = Number.isInteger(Number(text)) ? Number(text) : text;
    }
    return request;
  }

  // error.param -> a control: the settings by name, a card by "cards.N..." (N from 0) or by
  // "card N" (from 1) in a message about param "cards".
  function controlFor(error) {
    const param = error.param || "";
    const named = { seconds: f.seconds, size: f.size, width: f.size, height: f.size, model: f.model, mode: f.model, seed: f.seed, steps: f.steps };
    if (named[param]) return named[param];
    const indexed = /^cards\.(\d+)(?:\.(\w+))?/.exec(param);
    if (indexed) return cardControl(Number(indexed[1]), indexed[2] === "at" ? "at" : "content");
    const counted = param === "cards" && /\bcard (\d+)\b/.exec(error.message || "");
    if (counted) return cardControl(Number(counted[1]) - 1, /\bat\b|outside|order/.test(error.message) ? "at" : "content");
    return null;
  }

  function showListError(message) {
    cardsError.textContent = message;
    cardsError.hidden = false;
    $("sb-error").textContent = "The storyboard was not rendered: see the timeline.";
    $("sb-error").hidden = false;
    $("sb-add-text").focus();
  }

  async function submit(event) {
    event.preventDefault();
    errors.clear();
    status.textContent = "";
    let request;
    try {
      request = body();
    } catch (problem) {
      if (problem.list) return showListError(problem.message);
      if (problem.control) return errors.show(problem.control, problem.message, "The storyboard was not rendered");
      throw problem;
    }
    const button = $("sb-render");
    button.disabled = true;
    status.textContent = "Sending…";
    try {
      const video = await api.storyboard(request);
      status.textContent = `Rendering ${video.id}; the board stays here for another try.`;
      dialog.close();
      onCreated(video);
    } catch (error) {
      status.textContent = "";
      if (!(error instanceof ApiError)) throw error;
      const control = controlFor(error);
      if (control?.closest("details")) control.closest("details").open = true;
      if (!control && (error.param || "").startsWith("cards")) return showListError(plainError(error));
      errors.show(control, plainError(error), "The storyboard was not rendered");
    } finally {
      button.disabled = !f.model.options.length;
    }
  }

  // --- events ---

  form.addEventListener("submit", submit);
  for (const node of Object.values(f)) node.addEventListener("input", save);
  f.model.addEventListener("change", save);
  f.seconds.addEventListener("input", drawTimeline);
  $("sb-add-text").addEventListener("click", () => add("text"));
  $("sb-add-image").addEventListener("click", () => add("image"));
  $("sb-add-video").addEventListener("click", () => add("video"));
  $("storyboard-close").addEventListener("click", () => dialog.close());
  const clearButton = $("sb-clear");
  clearButton.addEventListener("click", () => {
    // Two presses, like Delete: a board can hold a lot of typing.
    if (clearButton.dataset.confirming !== "yes" && cards.length) {
      clearButton.dataset.confirming = "yes";
      clearButton.textContent = "Press again to remove every card";
      setTimeout(() => {
        clearButton.dataset.confirming = "";
        clearButton.textContent = "Start over";
      }, 5000);
      return;
    }
    clearButton.dataset.confirming = "";
    clearButton.textContent = "Start over";
    cards = [];
    errors.clear();
    cardsError.hidden = true;
    draw();
    say("Every card was removed.");
    $("sb-add-text").focus();
  });

  function setModels(preferred) {
    const wanted = preferred || f.model.dataset.wanted || f.model.value || catalog?.aliases?.[catalog?.defaults?.model];
    const offered = fillModels(f.model, catalog, "storyboard", wanted);
    $("sb-render").disabled = !offered.length;
  }

  return {
    setCatalog(next) {
      catalog = next;
      f.seconds.placeholder = catalog?.defaults?.seconds || "4";
      f.size.placeholder = catalog?.defaults?.size ? `server default: ${catalog.defaults.size}` : "server default";
      load();
      setModels();
    },
    // Open the editor; with a video, it is added as a video card first.
    open(video = null) {
      errors.clear();
      cardsError.hidden = true;
      status.textContent = "";
      if (video && !cards.length) setModels(modelOf(video, catalog));
      if (!dialog.open) dialog.showModal();
      if (video) {
        if (!f.size.value && video.size) f.size.value = video.size;
        add("video", { video: video.id });
      } else {
        draw();
        (list.querySelector("[data-part=content]") || $("sb-add-text")).focus();
      }
    },
  };
}
