// The editing panel of one finished video: remix, extend (forwards or backwards), re-cut, loop,
// blend and stills, each through its server route (issue 4). A tool is offered only when some
// model of the catalog can do it, and its model picker lists only those models; a 400 that
// still comes (a catalog changed since the page loaded) is shown by the model picker.
//
// What the person typed is kept per video (in this browser) until the request succeeds, so
// closing the panel or a failed request loses nothing.

import { api, ApiError, mediaUrl, stillUrl } from "./api.js";
import { el, formatSeconds } from "./dom.js";
import { fieldErrors, fillModels, modelOf, numberText, plainError } from "./forms.js";

const DRAFTS_STORAGE = "openreel.editDrafts";
const MAX_DRAFTS = 20;
const STILL_POLL_MS = 700;

// mode: the catalog mode a model needs (null: no model, the video's own frames).
const TOOLS = {
  remix: {
    mode: "remix",
    button: "Remix",
    hint: "Re-renders the video from a partly noised copy of itself, steered by a new prompt.",
    prompt: "What the remix should show",
    failed: "The remix was not made",
  },
  extend: {
    mode: "extend",
    button: "Extend",
    hint: "Adds new seconds after the end, or before the start; the result is the whole clip.",
    prompt: "What happens in the new seconds",
    seconds: "Seconds to add",
    failed: "The extension was not made",
  },
  recut: {
    mode: null,
    button: "Re-cut",
    hint: "Keeps a part of the video: no model runs, the frames are the video's own.",
    failed: "The re-cut was not made",
  },
  loop: {
    mode: "loop",
    button: "Make it loop",
    hint: "Re-makes the video so that its end leads seamlessly back into its start.",
    prompt: "Prompt (optional: the video's own if unchanged)",
    seconds: "Loop length (seconds)",
    failed: "The loop was not made",
  },
  blend: {
    mode: "blend",
    button: "Blend",
    hint: "One clip that turns from the first video into the second along the curve.",
    prompt: "Prompt (optional: both videos' prompts if unchanged)",
    seconds: "Blend length (seconds)",
    failed: "The blend was not made",
  },
  still: {
    mode: "still",
    button: "Make a still",
    hint: "One image from the prompt with a model that makes stills, at this video's size.",
    prompt: "What the still should show",
    failed: "The still was not made",
  },
};
const CURVES = {
  linear: (t) => t,
  ease: (t) => t * t * (3 - 2 * t),
  "ease-in": (t) => t * t,
  "ease-out": (t) => 1 - (1 - t) ** 2,
};

export function createEditor({ videos, onCreated }) {
  const dialog = document.getElementById("edit");
  const form = document.getElementById("edit-form");
  const $ = (id) => document.getElementById(id);
  const f = {
    prompt: $("edit-prompt"),
    seconds: $("edit-seconds"),
    custom: $("edit-strength-custom"),
    curve: $("edit-curve"),
    start: $("edit-start"),
    end: $("edit-end"),
    model: $("edit-model"),
    seed: $("edit-seed"),
    steps: $("edit-steps"),
    blendA: $("edit-blend-a"),
    blendB: $("edit-blend-b"),
  };
  const status = $("edit-status");
  const submitButton = $("edit-submit");
  const errors = fieldErrors(form, $("edit-error"));
  const stillBox = $("edit-still");
  let catalog = null;
  let video = null;
  let player = null;
  let stillTicket = 0;

  // --- which tool ---

  const radios = (name) => [...form.querySelectorAll(`input[name=${name}]`)];
  const checked = (name) => form.querySelector(`input[name=${name}]:checked`)?.value ?? null;
  const check = (name, value) => {
    const radio = form.querySelector(`input[name=${name}][value="${value}"]`);
    if (radio) radio.checked = true;
  };

  function toolAvailable(tool) {
    const mode = TOOLS[tool].mode;
    return mode === null || (catalog?.data || []).some((card) => card.modes.includes(mode));
  }

  function modeOf(tool) {
    return tool === "extend" && checked("direction") === "backward" ? "extend_backward" : TOOLS[tool].mode;
  }

  function setTool(tool) {
    check("tool", tool);
    const info = TOOLS[tool];
    for (const node of form.querySelectorAll("[data-tools]")) node.hidden = !node.dataset.tools.split(" ").includes(tool);
    $("edit-tool-hint").textContent = info.hint;
    $("edit-prompt-label").textContent = info.prompt || "Prompt";
    $("edit-seconds-label").textContent = info.seconds || "Seconds";
    submitButton.textContent = info.button;
    describeSeconds(tool);
    refreshModels();
    errors.clear();
    if (tool === "recut") drawRange();
    if (tool === "blend") drawCurve();
  }

  function describeSeconds(tool) {
    const length = formatSeconds(video?.seconds);
    f.seconds.placeholder = tool === "extend" ? "2" : String(Number(video?.seconds) || "");
    $("edit-seconds-hint").textContent =
      tool === "extend"
        ? `The video is ${length}; the new one is ${length} plus these.`
        : tool === "loop"
          ? `Default: the video's own ${length}.`
          : "Default: the first video's length.";
  }

  function refreshModels() {
    const tool = checked("tool");
    const mode = modeOf(tool);
    const hint = $("edit-model-hint");
    if (!mode) return;
    const own = modelOf(video, catalog);
    const cards = fillModels(f.model, catalog, mode, own);
    const ownCan = cards.some((card) => card.id === own);
    const what = mode === "extend_backward" ? "extend backwards" : mode === "still" ? "make stills" : mode;
    hint.textContent = !cards.length
      ? `No model on this server can ${what}.`
      : ownCan
        ? `Only models that can ${what} are listed; ${own} made this video.`
        : `${own || "The video's model"} cannot ${what}; these models can.`;
    submitButton.disabled = !cards.length;
  }

  // --- strength ---

  function syncStrength() {
    $("edit-strength-custom-field").hidden = checked("strength") !== "custom";
  }

  function strengthValue() {
    const choice = checked("strength");
    if (choice !== "custom") return choice;
    const text = f.custom.value.trim();
    if (!text) throw fieldProblem(f.custom, "Type a strength such as 0.35, or pick a preset.");
    const number = Number(text);
    return Number.isFinite(number) ? number : text; // the server explains what is wrong with text
  }

  // --- blend: two gallery videos and a curve ---

  function fillBlendPickers() {
    const finished = videos().filter((item) => item.status === "completed");
    for (const [select, preferred] of [
      [f.blendA, f.blendA.value || video.id],
      [f.blendB, f.blendB.value || finished.find((item) => item.id !== video.id)?.id || video.id],
    ]) {
      select.replaceChildren(
        ...finished.map((item) =>
          el("option", { value: item.id }, `${clip(item.prompt || item.id, 48)} · ${formatSeconds(item.seconds)}${item.id === video.id ? " (this video)" : ""}`),
        ),
      );
      if (finished.some((item) => item.id === preferred)) select.value = preferred;
    }
  }

  function drawCurve() {
    const shape = CURVES[f.curve.value] || CURVES.linear;
    const points = Array.from({ length: 33 }, (_, i) => {
      const t = i / 32;
      return `${(t * 100).toFixed(1)},${(40 - shape(t) * 36 - 2).toFixed(1)}`;
    }).join(" ");
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 100 40");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("aria-hidden", "true");
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points);
    svg.append(line);
    const words = {
      linear: "The second video's share grows evenly.",
      ease: "Slow away from the first video, slow into the second.",
      "ease-in": "The change comes late.",
      "ease-out": "The change comes early.",
    };
    $("edit-curve-hint").replaceChildren(svg, el("span", { class: "hint" }, words[f.curve.value] || ""));
  }

  // --- re-cut: two number inputs and a range bar over the video's duration ---

  const range = { box: $("edit-range"), fill: $("edit-range-fill"), start: $("edit-range-start"), end: $("edit-range-end") };

  function duration() {
    return Number(video?.seconds) || 0;
  }

  function frameStep() {
    return 1 / (Number(video?.openreel?.fps) || 24);
  }

  const round = (value) => Math.round(value * 1000) / 1000;
  const clamp = (value, low, high) => Math.min(Math.max(value, low), high);

  function cut() {
    const total = duration();
    const start = Number(f.start.value);
    const end = f.end.value === "" ? total : Number(f.end.value);
    return { start: Number.isFinite(start) ? start : 0, end: Number.isFinite(end) ? end : total, total };
  }

  function drawRange() {
    const { start, end, total } = cut();
    const at = (value) => `${total ? (clamp(value, 0, total) / total) * 100 : 0}%`;
    range.start.style.left = at(start);
    range.end.style.left = at(end);
    range.fill.style.left = at(start);
    range.fill.style.width = `${total ? (Math.max(0, clamp(end, 0, total) - clamp(start, 0, total)) / total) * 100 : 0}%`;
    for (const [handle, value, low, high] of [
      [range.start, start, 0, end],
      [range.end, end, start, total],
    ]) {
      handle.setAttribute("aria-valuemin", String(round(low)));
      handle.setAttribute("aria-valuemax", String(round(high)));
      handle.setAttribute("aria-valuenow", String(round(value)));
      handle.setAttribute("aria-valuetext", formatSeconds(value));
    }
    $("edit-range-max").textContent = formatSeconds(total);
    f.start.max = String(total);
    f.end.max = String(total);
    $("edit-recut-summary").textContent =
      end > start ? `Keeps ${formatSeconds(end - start)} of ${formatSeconds(total)}.` : "The end must come after the start.";
  }

  function setCut(which, value) {
    const { start, end, total } = cut();
    const step = frameStep();
    value = Math.round(value / step) * step; // on the frame grid: the cut keeps whole frames
    if (which === "start") f.start.value = String(round(clamp(value, 0, end - step)));
    else f.end.value = String(round(clamp(value, start + step, total)));
    drawRange();
    if (player && which === "start") player.currentTime = Number(f.start.value);
    if (player && which === "end") player.currentTime = Math.max(0, Number(f.end.value) - step);
    saveDraft();
  }

  for (const which of ["start", "end"]) {
    range[which].addEventListener("keydown", (event) => {
      const { start, end, total } = cut();
      const value = which === "start" ? start : end;
      const step = frameStep();
      const moves = {
        ArrowLeft: value - step,
        ArrowDown: value - step,
        ArrowRight: value + step,
        ArrowUp: value + step,
        PageDown: value - total / 10,
        PageUp: value + total / 10,
        Home: 0,
        End: total,
      };
      if (!(event.key in moves)) return;
      event.preventDefault();
      setCut(which, moves[event.key]);
    });
  }

  // A press on the bar moves the nearer handle there; dragging keeps moving it.
  let dragging = null;
  function valueAt(event) {
    const box = range.box.getBoundingClientRect();
    return (clamp(event.clientX - box.left, 0, box.width) / (box.width || 1)) * duration();
  }
  range.box.addEventListener("pointerdown", (event) => {
    const value = valueAt(event);
    const { start, end } = cut();
    dragging = event.target === range.start || event.target === range.end
      ? (event.target === range.start ? "start" : "end")
      : Math.abs(value - start) <= Math.abs(value - end) ? "start" : "end";
    range.box.setPointerCapture(event.pointerId);
    range[dragging].focus();
    setCut(dragging, value);
    event.preventDefault();
  });
  range.box.addEventListener("pointermove", (event) => {
    if (dragging) setCut(dragging, valueAt(event));
  });
  for (const type of ["pointerup", "pointercancel"]) range.box.addEventListener(type, () => (dragging = null));
  for (const input of [f.start, f.end]) input.addEventListener("input", drawRange);

  // --- the source video at the top of the panel ---

  function showSource() {
    player = el("video", {
      controls: true,
      preload: "metadata",
      playsinline: true,
      muted: true,
      "aria-label": `The video being edited: ${video.prompt || video.id}`,
    });
    const [width, height] = (video.size || "16x9").split("x").map(Number);
    const media = el("div", { class: "media" }, player);
    media.style.setProperty("--aspect", `${width} / ${height}`);
    $("edit-source").replaceChildren(
      media,
      el(
        "div",
        {},
        el("p", { class: "details-prompt" }, video.prompt || "(no prompt)"),
        el("p", { class: "muted" }, [modelOf(video, catalog), video.size, formatSeconds(video.seconds)].join(" · ")),
      ),
    );
    const shown = video.id;
    mediaUrl(video.id, "thumbnail").then((url) => player.setAttribute("poster", url)).catch(() => {});
    mediaUrl(video.id, "video")
      .then((url) => {
        if (video?.id === shown) player.src = url;
      })
      .catch(() => {});
    // While re-cutting, the preview plays only the part that is kept.
    player.addEventListener("timeupdate", () => {
      if (checked("tool") !== "recut" || player.paused) return;
      const { start, end } = cut();
      if (player.currentTime >= end || player.currentTime < start - 0.05) player.currentTime = start;
    });
  }

  // --- drafts: kept per video until a request succeeds ---

  function readDrafts() {
    try {
      return JSON.parse(localStorage.getItem(DRAFTS_STORAGE) || "{}") || {};
    } catch {
      return {};
    }
  }

  function values() {
    return {
      tool: checked("tool"),
      strength: checked("strength"),
      direction: checked("direction"),
      ...Object.fromEntries(Object.entries(f).map(([name, node]) => [name, node.value])),
    };
  }

  function saveDraft() {
    if (!video) return;
    const drafts = readDrafts();
    delete drafts[video.id];
    drafts[video.id] = values();
    const ids = Object.keys(drafts);
    for (const id of ids.slice(0, Math.max(0, ids.length - MAX_DRAFTS))) delete drafts[id];
    try {
      localStorage.setItem(DRAFTS_STORAGE, JSON.stringify(drafts));
    } catch {
      // Storage refused (a private window): the open form still holds everything.
    }
  }

  function forgetDraft(id) {
    const drafts = readDrafts();
    delete drafts[id];
    try {
      localStorage.setItem(DRAFTS_STORAGE, JSON.stringify(drafts));
    } catch {
      // nothing to forget then
    }
  }

  function restore(tool) {
    const draft = readDrafts()[video.id] || {};
    f.prompt.value = draft.prompt ?? video.prompt ?? "";
    f.seconds.value = draft.seconds ?? "";
    f.custom.value = draft.custom ?? "";
    f.curve.value = draft.curve || "ease";
    f.start.value = draft.start ?? "0";
    f.end.value = draft.end ?? String(duration());
    f.seed.value = draft.seed ?? "";
    f.steps.value = draft.steps ?? "";
    f.blendA.value = "";
    f.blendB.value = "";
    fillBlendPickers();
    if (draft.blendA) f.blendA.value = draft.blendA;
    if (draft.blendB) f.blendB.value = draft.blendB;
    check("strength", draft.strength || "mild");
    check("direction", draft.direction || "forward");
    syncStrength();
    f.model.value = "";
    setTool(tool || draft.tool || firstTool());
    if (draft.model && [...f.model.options].some((option) => option.value === draft.model)) f.model.value = draft.model;
  }

  function firstTool() {
    return Object.keys(TOOLS).find(toolAvailable) || "recut";
  }

  // --- sending ---

  class FieldProblem extends Error {
    constructor(control, message) {
      super(message);
      this.control = control;
    }
  }
  const fieldProblem = (control, message) => new FieldProblem(control, message);

  function common(body) {
    const seed = numberText(f.seed.value);
    const steps = numberText(f.steps.value);
    if (seed !== null) body.seed = Number.isInteger(Number(seed)) ? Number(seed) : seed;
    if (steps !== null) body.steps = Number.isInteger(Number(steps)) ? Number(steps) : steps;
    if (f.model.value) body.model = f.model.value;
    return body;
  }

  function prompt({ required }) {
    const text = f.prompt.value.trim();
    if (required && !text) throw fieldProblem(f.prompt, "Describe what you want first.");
    return text;
  }

  const SEND = {
    remix: () => api.remix(video.id, common({ prompt: prompt({ required: true }), strength: strengthValue() })),
    extend() {
      const seconds = numberText(f.seconds.value);
      if (seconds === null) throw fieldProblem(f.seconds, "How many seconds should be added?");
      const form = new FormData();
      form.append("video[id]", video.id);
      form.append("prompt", prompt({ required: true }));
      form.append("seconds", seconds);
      if (checked("direction") === "backward") form.append("backward", "true");
      for (const [name, value] of Object.entries(common({}))) form.append(name, String(value));
      return api.extend(form);
    },
    recut() {
      const { start, end } = cut();
      if (f.start.value.trim() === "" || !Number.isFinite(Number(f.start.value))) throw fieldProblem(f.start, "Type the start in seconds, such as 0.5.");
      if (f.end.value.trim() !== "" && !Number.isFinite(Number(f.end.value))) throw fieldProblem(f.end, "Type the end in seconds, such as 2.5.");
      return api.recut({ video_id: video.id, start, end });
    },
    loop() {
      const body = common({ video_id: video.id });
      const text = prompt({ required: false });
      if (text && text !== video.prompt) body.prompt = text;
      const seconds = numberText(f.seconds.value);
      if (seconds !== null) body.seconds = seconds;
      return api.loop(body);
    },
    blend() {
      const first = videos().find((item) => item.id === f.blendA.value);
      const body = common({ video_id: f.blendA.value, video_id_b: f.blendB.value, curve: f.curve.value, strength: strengthValue() });
      const text = prompt({ required: false });
      if (text && text !== first?.prompt) body.prompt = text;
      const seconds = numberText(f.seconds.value);
      if (seconds !== null) body.seconds = seconds;
      return api.blend(body);
    },
    still: () => api.still(common({ prompt: prompt({ required: true }), size: video.size })),
  };

  // error.param -> the control it is about.
  function controlFor(param) {
    const tool = checked("tool");
    const table = {
      prompt: f.prompt,
      seconds: f.seconds,
      model: f.model,
      seed: f.seed,
      steps: f.steps,
      start: f.start,
      end: f.end,
      curve: f.curve,
      strength: checked("strength") === "custom" ? f.custom : null,
      video_id: tool === "blend" ? f.blendA : null,
      video_id_b: f.blendB,
      mode: f.model,
      backward: f.model,
    };
    return table[param] || null;
  }

  async function submit(event) {
    event.preventDefault();
    errors.clear();
    const tool = checked("tool");
    const source = video;
    status.textContent = "Sending…";
    submitButton.disabled = true;
    try {
      const made = await SEND[tool]();
      forgetDraft(source.id);
      if (tool === "still") {
        status.textContent = `Making the still ${made.id}…`;
        followStill(made);
        return;
      }
      status.textContent = "";
      dialog.close();
      onCreated(made);
    } catch (error) {
      status.textContent = "";
      if (error instanceof FieldProblem) return errors.show(error.control, error.message, TOOLS[tool].failed);
      if (!(error instanceof ApiError)) throw error;
      const control = controlFor(error.param);
      if (control && control.closest("[hidden]")) {
        if (control.closest("details")) control.closest("details").open = true;
      }
      errors.show(control && !control.closest("[hidden]") ? control : null, plainError(error), TOOLS[tool].failed);
    } finally {
      submitButton.disabled = !f.model.options.length && TOOLS[checked("tool")].mode !== null;
    }
  }

  // A still is its own job (not a Video): follow it here and show the image when it is made.
  async function followStill(still) {
    const ticket = ++stillTicket;
    stillBox.hidden = false;
    stillBox.replaceChildren(el("p", { class: "muted" }, "Waiting for the still…"));
    let current = still;
    try {
      while (current.status === "queued" || current.status === "in_progress") {
        await new Promise((resolve) => setTimeout(resolve, STILL_POLL_MS));
        if (ticket !== stillTicket) return;
        current = await api.stillStatus(current.id);
      }
      if (current.status !== "completed") {
        stillBox.replaceChildren(el("p", { class: "video-error" }, `The still failed: ${current.error?.message || current.status}`));
        status.textContent = "";
        return;
      }
      const url = await stillUrl(current.id);
      if (ticket !== stillTicket) return;
      status.textContent = `The still ${current.id} is ready.`;
      stillBox.replaceChildren(
        el("img", { src: url, alt: `Still: ${current.prompt}` }),
        el("a", { href: url, download: `${current.id}.${current.format || "png"}` }, "Download the still"),
      );
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      stillBox.replaceChildren(el("p", { class: "video-error" }, `The still could not be followed: ${error.message}`));
    }
  }

  // --- events ---

  form.addEventListener("submit", submit);
  form.addEventListener("input", saveDraft);
  form.addEventListener("change", saveDraft);
  for (const radio of radios("tool")) radio.addEventListener("change", () => setTool(radio.value));
  for (const radio of radios("strength")) radio.addEventListener("change", syncStrength);
  for (const radio of radios("direction")) radio.addEventListener("change", refreshModels);
  f.curve.addEventListener("change", drawCurve);
  $("edit-close").addEventListener("click", () => dialog.close());
  $("edit-cancel").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    stillTicket++;
    if (player) player.removeAttribute("src");
    player = null;
  });

  return {
    setCatalog(next) {
      catalog = next;
      for (const label of form.querySelectorAll("#edit-tools [data-tool]")) label.hidden = !toolAvailable(label.dataset.tool);
    },
    // Open the panel on a finished video, on `tool` or the one last used on it.
    open(target, tool = null) {
      video = target;
      errors.clear();
      status.textContent = "";
      stillBox.hidden = true;
      stillBox.replaceChildren();
      $("edit-title").textContent = "Edit video";
      showSource();
      restore(tool && toolAvailable(tool) ? tool : null);
      if (!dialog.open) dialog.showModal();
      form.querySelector("input[name=tool]:checked")?.focus();
    },
  };
}

function clip(text, length) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}
