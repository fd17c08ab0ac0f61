// Helpers the editing panel and the storyboard editor share: which models can do a mode, and
// errors shown next to the control that caused them (the composer's way, for built-up forms).

import { el } from "./dom.js";

// The catalog's cards that can do `mode`, in the composer's order: on this machine, tiny test
// models, not downloaded yet. An action is offered only with these.
export function capableModels(catalog, mode) {
  const cards = (catalog?.data || []).filter((card) => card.modes.includes(mode));
  const rank = (card) => (card.random_weights ? 1 : card.downloaded ? 0 : 2);
  return cards.map((card, index) => [card, index]).sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1]).map(([card]) => card);
}

// Fill a <select> with the models that can do `mode`; keep `preferred` (a catalog id) when it
// can, else the first. Returns the cards offered.
export function fillModels(select, catalog, mode, preferred) {
  const cards = capableModels(catalog, mode);
  const keep = select.value;
  select.replaceChildren(
    ...cards.map((card) => {
      const notes = [card.random_weights ? card.id : card.title];
      if (card.random_weights) notes.push("random weights: noise");
      else if (!card.downloaded) notes.push("not downloaded");
      return el("option", { value: card.id }, notes.join(" · "));
    }),
  );
  const ids = cards.map((card) => card.id);
  const choice = [preferred, keep].find((id) => id && ids.includes(id)) || ids[0] || "";
  select.value = choice;
  return cards;
}

// The catalog id a video ran as (sora-2 is an alias: the resolved model is what can or cannot).
export function modelOf(video, catalog) {
  const resolved = video?.openreel?.model;
  if (resolved) return resolved;
  return catalog?.aliases?.[video?.model] || video?.model || "";
}

// Errors beside controls: every control has a <p class="field-error" id="{control id}-error">.
export function fieldErrors(container, formError) {
  function clear() {
    for (const node of container.querySelectorAll(".field-error")) {
      node.hidden = true;
      node.textContent = "";
    }
    for (const node of container.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
    formError.hidden = true;
    formError.textContent = "";
  }

  // Show `message` by `control` (an element, or null for the form as a whole).
  function show(control, message, summary) {
    const note = control && container.querySelector(`#${CSS.escape(control.id)}-error`);
    if (!note) {
      formError.textContent = summary ? `${summary}: ${message}` : message;
      formError.hidden = false;
      return;
    }
    note.textContent = message;
    note.hidden = false;
    control.setAttribute("aria-invalid", "true");
    formError.textContent = summary ? `${summary}: see ${fieldName(control)} above.` : "";
    formError.hidden = !summary;
    control.focus();
  }

  return { clear, show };
}

function fieldName(control) {
  const label = control.labels?.[0]?.textContent.trim();
  return label ? `“${label}”` : "the marked field";
}

export function plainError(error) {
  if (error.status === 401) return "This server needs an API key; enter it and try again.";
  if (error.status === 409 || /_not_ready$/.test(error.code || "")) return `Not yet: ${error.message}`;
  if (error.status === 413) return `Too large: ${error.message}`;
  return error.message || "The server refused the request.";
}

// "1", "0.5": numbers as people type them, for the JSON bodies (seconds are strings there).
export function numberText(value) {
  const text = String(value ?? "").trim();
  return text === "" ? null : text;
}
