// The composer: the form that asks for a video. It sends exactly the fields POST /v1/videos takes
// (protocol.py's VideoCreateRequest), shows the server's errors next to the field they name, and
// never clears what the person typed: a draft is kept in localStorage until they press Clear.

import { api, ApiError } from "./api.js";
import { clear, el, formatSeconds, modeLabel, modesShort, otherModes, startModes } from "./dom.js";
import { initSettingsPanel, revealField } from "./panel.js";

const DRAFT_STORAGE = "openreel.draft";
const TEXT_FIELDS = [
  "prompt", "negative_prompt", "style", "model", "seconds", "resolution", "aspect", "size",
  "seed", "steps", "guidance", "fps", "quality", "memory",
];
// error.param from the server -> the control it is about. Anything else is shown under the form.
const PARAM_FIELDS = {
  prompt: "prompt",
  negative_prompt: "negative_prompt",
  style: "style",
  model: "model",
  seconds: "seconds",
  size: "size",
  width: "size",
  height: "size",
  resolution: "resolution",
  aspect: "aspect",
  seed: "seed",
  steps: "steps",
  guidance: "guidance",
  fps: "fps",
  quality: "quality",
  audio: "audio",
  memory: "memory",
  loras: "loras",
  variations: "variations",
  input_reference: "input_reference",
  image: "input_reference",
  mode: "input_reference",
};
const FIELD_NAMES = {
  prompt: "Prompt", negative_prompt: "Negative prompt", style: "Style", model: "Model",
  seconds: "Duration", size: "Width × height", resolution: "Resolution", aspect: "Aspect ratio",
  seed: "Seed", steps: "Steps", guidance: "Guidance", fps: "Frames per second",
  variations: "Variations", input_reference: "Image", quality: "Quality", memory: "Memory", loras: "LoRAs", audio: "Sound",
};
// Settings that live under "More settings": an error about one opens it.
const MORE_SETTINGS = ["guidance", "fps", "memory", "loras"];

export function createComposer({ onCreated }) {
  const form = document.getElementById("composer");
  const $ = (id) => document.getElementById(id);
  const fields = Object.fromEntries(TEXT_FIELDS.map((name) => [name, $(name)]));
  const status = $("composer-status");
  const formError = $("composer-error");
  const createButton = $("create-button");
  const upload = { field: $("upload-field"), input: $("input_reference"), file: null };
  let styles = new Map();
  let models = new Map();
  let offeredLoras = [];
  let aliases = {};
  let defaults = { size: "", seconds: "" };

  // --- catalog: styles and models ---

  function setCatalog(styleList, catalog, loraList = { data: [] }) {
    const keepLoras = chosenLoras();
    offeredLoras = loraList.data || [];
    const keepStyle = fields.style.value;
    const keepModel = fields.model.value;
    styles = new Map(styleList.data.map((style) => [style.id, style]));
    models = new Map(catalog.data.map((card) => [card.id, card]));
    aliases = catalog.aliases || {};
    defaults = catalog.defaults || defaults;

    const styleSelect = fields.style;
    styleSelect.replaceChildren(el("option", { value: "" }, "No style"));
    for (const style of styles.values()) styleSelect.append(el("option", { value: style.id }, style.name));

    const modelSelect = fields.model;
    modelSelect.replaceChildren();
    const named = el("optgroup", { label: "Server defaults" });
    for (const [alias, target] of Object.entries(aliases)) {
      named.append(el("option", { value: alias }, `${alias} (here: ${target})`));
    }
    if (named.children.length) modelSelect.append(named);
    const groups = [
      ["On this machine", (card) => card.downloaded && !card.random_weights],
      ["Not downloaded yet", (card) => !card.downloaded && !card.random_weights],
      ["Tiny test models (random weights: noise)", (card) => card.random_weights],
    ];
    for (const [label, belongs] of groups) {
      const group = el("optgroup", { label });
      for (const card of models.values()) {
        if (!belongs(card)) continue;
        // The flag before the modes: a narrow closed <select> cuts the end, and the box under
        // it repeats the modes anyway.
        const notes = [card.random_weights ? card.id : card.title];
        if (card.random_weights) notes.push("random weights: noise");
        else if (!card.downloaded) notes.push("not downloaded");
        notes.push(modesShort(card.modes));
        group.append(el("option", { value: card.id }, notes.join(" · ")));
      }
      if (group.children.length) modelSelect.append(group);
    }
    // Short enough for a half-width select; the size itself shows in the aspect control.
    fields.resolution.options[0].textContent = "Default";
    fields.seconds.placeholder = defaults.seconds || "4";
    fields.size.placeholder = defaults.size || "1280x720";
    if (keepStyle && styles.has(keepStyle)) styleSelect.value = keepStyle;
    if (keepModel && optionExists(modelSelect, keepModel)) modelSelect.value = keepModel;
    renderLoras(keepLoras);
    restoreDraft();
    syncAspect(); // the default size is known now
    describeStyle();
    describeModel();
    summarize();
  }

  function optionExists(select, value) {
    return [...select.options].some((option) => option.value === value);
  }

  function selectedCard() {
    const id = fields.model.value;
    return models.get(aliases[id] || id) || null;
  }

  function describeStyle() {
    const box = $("style-info");
    const style = styles.get(fields.style.value);
    if (!style) {
      box.replaceChildren(el("p", {}, "Your prompt is used as written."));
      return;
    }
    // The preview is the prompt the model will actually see under this style.
    const typed = fields.prompt.value.trim() || "your prompt";
    const preview = style.prompt_template.replace("{prompt}", typed);
    const suggested = [];
    if (style.steps) suggested.push(`${style.steps} steps`);
    if (style.guidance) suggested.push(`guidance ${style.guidance}`);
    box.replaceChildren(
      el("p", {}, style.description),
      el("p", { class: "preview" }, el("span", { class: "muted" }, "The model sees: "), preview),
      el(
        "p",
        { class: "muted" },
        `By ${style.author} (${style.licence})${suggested.length ? ` · suggests ${suggested.join(", ")}` : ""}`,
      ),
    );
  }

  function describeModel() {
    const box = $("model-info");
    const card = selectedCard();
    const alias = aliases[fields.model.value];
    if (!card) {
      box.replaceChildren();
      return;
    }
    const lines = [];
    if (alias) lines.push(el("p", {}, `${fields.model.value} means ${card.title} on this server.`));
    if (card.description) lines.push(el("p", {}, card.description));
    lines.push(
      el("p", {}, `Makes ${startModes(card.modes).map(modeLabel).join(" and ") || "video"}; native ${card.native_width}×${card.native_height} at ${card.fps} fps.`),
      el(
        "p",
        {},
        "Licence: ",
        el("a", { href: card.licence_url, target: "_blank", rel: "noopener" }, card.licence),
        ` · needs about ${card.memory_gib} GiB of GPU memory`,
      ),
    );
    const more = otherModes(card.modes);
    if (more.length) lines.push(el("p", {}, `The model can also: ${more.map(modeLabel).join(", ")}.`));
    if (card.random_weights) {
      lines.push(el("p", { class: "warning" }, "Random weights: the video is noise. For trying the studio, not for pictures."));
    } else if (!card.downloaded) {
      lines.push(
        el("p", { class: "warning" }, "Not downloaded yet: on the server run ", el("code", {}, `openreel models pull ${card.id}`), "."),
      );
    } else {
      lines.push(el("p", { class: "muted" }, "Weights are on this machine."));
    }
    box.replaceChildren(...lines);
    $("seconds-hint").textContent =
      `Up to ${formatSeconds(card.max_total_seconds)} with this model ` +
      `(${formatSeconds(card.max_seconds)} in one pass, longer clips are made in windows).`;
    fields.steps.placeholder = `${card.default_steps} (model default)`;
    fields.guidance.placeholder = `${card.default_guidance} (model default)`;
    // Image-to-video only where the card says the model can start from an image.
    const canStartFromImage = card.modes.includes("i2v");
    upload.field.hidden = !canStartFromImage;
    if (!canStartFromImage) clearUpload();
    renderLoras(chosenLoras());
    // Sound is on by default where the model makes it; the box turns it off for one video.
    $("audio-field").hidden = !card.audio;
  }

  // --- LoRAs: the ones the server offers, usable where they fit the chosen model's family ---

  function chosenLoras() {
    return [...document.querySelectorAll("#loras input[type=checkbox]:checked:not(:disabled)")].map((box) => ({
      source: box.value,
      scale: document.getElementById(`${box.id}-scale`).value.trim(),
    }));
  }

  function renderLoras(chosen = []) {
    const list = $("loras");
    const card = selectedCard();
    const wanted = new Map(chosen.map((lora) => [lora.source, lora.scale ?? ""]));
    if (!offeredLoras.length) {
      list.replaceChildren(
        el("p", { class: "muted" }, "This server offers no LoRAs yet. Its operator puts .safetensors files in its LoRA folder (", el("code", {}, "openreel serve --lora-dir"), ")."),
      );
      return;
    }
    list.replaceChildren(
      ...offeredLoras.map((lora, index) => {
        const id = `lora-${index}`;
        const otherFamily = card && lora.family && lora.family !== card.family;
        const why = lora.error ? lora.error : otherFamily ? `made for ${lora.family_title}, not ${card.title}` : "";
        const box = el("input", { type: "checkbox", id, value: lora.id });
        box.checked = wanted.has(lora.id) && !why;
        box.disabled = Boolean(why);
        const scale = el("input", {
          id: `${id}-scale`,
          type: "text",
          inputmode: "decimal",
          class: "lora-scale",
          placeholder: "1.0",
          "aria-label": `Strength of ${lora.id}`,
        });
        scale.value = wanted.has(lora.id) && wanted.get(lora.id) !== 1 ? String(wanted.get(lora.id)) : "";
        scale.disabled = Boolean(why);
        const credit = lora.author ? `by ${lora.author} (${lora.licence})` : "";
        const family = lora.family_title ? `for ${lora.family_title}` : "for any model";
        return el(
          "div",
          { class: "lora-row", dataset: { lora: lora.id } },
          box,
          el("label", { for: id }, lora.id, " ", el("span", { class: "muted" }, why || [family, credit].filter(Boolean).join(" · "))),
          scale,
        );
      }),
    );
  }

  // --- size: named resolution + aspect, or an exact WIDTHxHEIGHT ---

  function sizeMode() {
    return form.querySelector("input[name=size_mode]:checked").value;
  }

  let lastAspect = "16:9";

  function setSizeMode(mode) {
    form.querySelector(`input[name=size_mode][value="${mode}"]`).checked = true;
    $("size-named").hidden = mode !== "named";
    $("size-exact").hidden = mode !== "exact";
    syncAspect();
  }

  // The server's default is an exact size: an aspect ratio means something only with a resolution.
  // Meanwhile the aspect control shows the shape the default size will have, not a stale choice.
  function syncAspect() {
    const usingDefault = !fields.resolution.value;
    fields.aspect.disabled = usingDefault;
    let shown = fields.aspect.querySelector("option[data-default-size]");
    if (usingDefault) {
      if (!shown) {
        shown = el("option", { value: "", dataset: { defaultSize: "" } });
        fields.aspect.prepend(shown);
      }
      if (fields.aspect.value) lastAspect = fields.aspect.value;
      shown.textContent = shapeOf(defaults.size);
      fields.aspect.value = "";
    } else if (shown) {
      const chosen = fields.aspect.value; // a filled-in recipe or draft may have set one already
      shown.remove();
      fields.aspect.value = chosen || lastAspect;
    }
  }

  function shapeOf(size) {
    const [width, height] = String(size || "").split("x").map(Number);
    if (!width || !height) return "The server's own";
    const shape = width > height ? "landscape" : width < height ? "portrait" : "square";
    return `${width}×${height} ${shape}`;
  }

  // --- image upload (drag and drop or file picker) ---

  function setUpload(file) {
    if (!file) return clearUpload();
    upload.file = file;
    $("upload-name").textContent = `${file.name} (${Math.round(file.size / 1024)} KiB)`;
    const image = $("upload-image");
    if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
    image.src = URL.createObjectURL(file);
    $("upload-preview").hidden = false;
  }

  function clearUpload() {
    upload.file = null;
    upload.input.value = "";
    const image = $("upload-image");
    if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
    image.removeAttribute("src");
    $("upload-preview").hidden = true;
  }

  const dropzone = $("dropzone");
  upload.input.addEventListener("change", () => setUpload(upload.input.files[0]));
  $("upload-clear").addEventListener("click", clearUpload);
  for (const type of ["dragenter", "dragover"]) {
    dropzone.addEventListener(type, (event) => {
      event.preventDefault();
      dropzone.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    dropzone.addEventListener(type, () => dropzone.classList.remove("dragging"));
  }
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) setUpload(file);
  });

  // --- the draft: nothing typed is lost, not even on a reload ---

  function values() {
    const data = Object.fromEntries(TEXT_FIELDS.map((name) => [name, fields[name].value]));
    data.size_mode = sizeMode();
    data.variations = form.querySelector("input[name=variations]:checked").value;
    data.loras = chosenLoras();
    data.audio = $("audio").checked;
    return data;
  }

  function saveDraft() {
    try {
      localStorage.setItem(DRAFT_STORAGE, JSON.stringify(values()));
    } catch {
      // Private windows may refuse storage; the form itself still holds everything.
    }
  }

  function restoreDraft() {
    let draft = null;
    try {
      draft = JSON.parse(localStorage.getItem(DRAFT_STORAGE) || "null");
    } catch {
      draft = null;
    }
    if (draft) fill(draft, { announce: false });
  }

  // Fill the form from plain settings (a draft, a recipe's spec, a video's echoed extras).
  function fill(settings, { announce = true } = {}) {
    for (const name of TEXT_FIELDS) {
      if (!(name in settings)) continue;
      const value = settings[name] === null || settings[name] === undefined ? "" : String(settings[name]);
      const field = fields[name];
      if (field.tagName === "SELECT" && value !== "" && !optionExists(field, value)) continue;
      field.value = value;
    }
    setSizeMode(settings.size_mode || sizeMode());
    const variations = String(settings.variations || "1");
    const radio = form.querySelector(`input[name=variations][value="${variations}"]`);
    if (radio) radio.checked = true;
    if (Array.isArray(settings.loras)) renderLoras(settings.loras);
    if ("audio" in settings) $("audio").checked = settings.audio !== false;
    if (settings.guidance || settings.fps || settings.memory || settings.loras?.length) $("more-settings").open = true;
    clearErrors();
    describeStyle();
    describeModel();
    summarize();
    saveDraft();
    if (announce) status.textContent = announce === true ? "Settings loaded into the composer." : announce;
  }

  // --- errors next to the field that caused them ---

  function clearErrors() {
    formError.hidden = true;
    formError.textContent = "";
    for (const node of form.querySelectorAll(".field-error")) {
      node.hidden = true;
      node.textContent = "";
    }
    for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  function showError(error) {
    clearErrors();
    status.textContent = "";
    let target = PARAM_FIELDS[error.param] || null;
    // "give either size or resolution/aspect" names size, but the person set resolution.
    if (target === "size" && sizeMode() === "named") target = "resolution";
    if (target === "input_reference" && upload.field.hidden) target = "model";
    const message = plain(error);
    if (!target) {
      formError.textContent = `The video was not created: ${message}`;
      formError.hidden = false;
      return;
    }
    if (MORE_SETTINGS.includes(target)) $("more-settings").open = true;
    if (["size"].includes(target)) setSizeMode("exact");
    if (["resolution", "aspect"].includes(target)) setSizeMode("named");
    const note = $(`${target}-error`);
    note.textContent = message;
    note.hidden = false;
    const control = target === "variations" ? form.querySelector("input[name=variations]:checked") : $(target);
    control.setAttribute("aria-invalid", "true");
    revealField(control); // a field in the closed settings panel cannot take the keyboard
    formError.textContent = `The video was not created: see ${FIELD_NAMES[target] || target} above.`;
    formError.hidden = false;
    control.focus();
  }

  function plain(error) {
    if (error.status === 401) return "This server needs an API key; enter it and press Create video again.";
    if (error.status === 413) return `Too large: ${error.message}`;
    // As the server wrote it: it may start with a model id, which must keep its case.
    return error.message || "The server refused the request.";
  }

  // --- submit ---

  function formData() {
    const data = new FormData();
    const put = (name, value) => {
      const text = (value ?? "").toString().trim();
      if (text !== "") data.append(name, text);
    };
    data.append("prompt", fields.prompt.value);
    for (const name of ["model", "negative_prompt", "style", "seconds", "seed", "steps", "guidance", "fps", "quality", "memory"]) {
      put(name, fields[name].value);
    }
    if (!$("audio-field").hidden && !$("audio").checked) data.append("audio", "false");
    // A list in a form, as the openai SDK sends one: loras[] once per LoRA.
    for (const lora of chosenLoras()) data.append("loras[]", lora.scale === "" ? lora.source : `${lora.source}:${lora.scale}`);
    if (sizeMode() === "exact") {
      put("size", fields.size.value.replace(/\s+/g, "").replace("×", "x"));
    } else if (fields.resolution.value) {
      put("resolution", fields.resolution.value);
      put("aspect", fields.aspect.value);
    }
    const variations = form.querySelector("input[name=variations]:checked").value;
    if (variations !== "1") put("variations", variations);
    if (upload.file && !upload.field.hidden) data.append("input_reference", upload.file, upload.file.name);
    return data;
  }

  async function submit(event) {
    event.preventDefault();
    clearErrors();
    if (!fields.prompt.value.trim()) {
      showError(new ApiError(400, { message: "Describe the video you want first.", param: "prompt" }));
      return;
    }
    createButton.disabled = true;
    status.textContent = "Sending…";
    try {
      const video = await api.create(formData());
      status.textContent = `Queued: ${video.id}. It appears in the gallery with its progress.`;
      onCreated(video);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showError(error);
    } finally {
      createButton.disabled = false;
    }
  }

  // The prompt bar says what the closed settings panel holds: model, length, size, variations.
  function summarize() {
    const model = fields.model.value || "default model";
    const seconds = fields.seconds.value.trim() || defaults.seconds || fields.seconds.placeholder;
    const size = sizeMode() === "exact" ? fields.size.value.trim() : fields.resolution.value && `${fields.resolution.value} ${fields.aspect.value}`;
    const variations = form.querySelector("input[name=variations]:checked").value;
    const bits = [model, seconds && `${seconds} s`, size || (defaults.size ? `default ${defaults.size}` : "default size")];
    if (fields.style.value) bits.push(fields.style.value);
    if (variations !== "1") bits.push(`${variations} variations`);
    if (fields.quality.value) bits.push(fields.quality.value);
    if (!$("audio-field").hidden && !$("audio").checked) bits.push("silent");
    $("settings-summary").textContent = bits.filter(Boolean).join(" · ");
  }

  form.addEventListener("submit", submit);
  form.addEventListener("input", () => {
    saveDraft();
    describeStyle();
    summarize();
  });
  form.addEventListener("change", summarize);
  fields.style.addEventListener("change", describeStyle);
  fields.model.addEventListener("change", describeModel);
  fields.resolution.addEventListener("change", syncAspect);
  for (const radio of form.querySelectorAll("input[name=size_mode]")) {
    radio.addEventListener("change", () => setSizeMode(sizeMode()));
  }
  $("reset-button").addEventListener("click", () => {
    form.reset();
    clearUpload();
    setSizeMode("named");
    clearErrors();
    localStorage.removeItem(DRAFT_STORAGE);
    describeStyle();
    describeModel();
    status.textContent = "Cleared.";
    summarize();
    fields.prompt.focus();
  });
  setSizeMode("named");
  clear(status);
  initSettingsPanel();

  return { setCatalog, fill, focus: () => fields.prompt.focus() };
}
