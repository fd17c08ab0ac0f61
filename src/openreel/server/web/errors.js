// A failed video's error, as a person reads it: what happened in one sentence, the action that
// fixes it, and the server's full message folded away (it is written for the command line).

import { el } from "./dom.js";
import { revealField } from "./panel.js";

// code -> [sentence, action]. The action is what a button next to the sentence does.
const EXPLAINED = {
  weights_missing: ["This model is not downloaded on this machine.", "pick-model"],
  model_not_found: ["This server does not have that model.", "pick-model"],
  unsupported_mode: ["This model cannot make this kind of video.", "pick-model"],
  out_of_memory: ["This machine ran out of memory for this video.", "smaller"],
  invalid_request: ["The server could not use these settings.", "edit-settings"],
  invalid_recipe: ["The recipe this video was to replay is not valid.", null],
  cancelled: ["Stopped before it finished.", null],
};

const ACTION_LABELS = {
  "download-model": "Download it",
  "pick-model": "Pick another model",
  smaller: "Try a smaller size",
  "edit-settings": "Change the settings",
};

export function explainError(error) {
  const code = error?.code || "";
  const [sentence, action] = EXPLAINED[code] || ["Something went wrong while making this video.", null];
  return { sentence, action, details: error?.message || code || "" };
}

// The composer field each action takes a person to.
function focusComposer(action) {
  const target = { "pick-model": "model", smaller: "resolution", "edit-settings": "prompt" }[action];
  const field = document.getElementById(target);
  if (!field) return;
  revealField(field); // the model and size live in the composer's settings panel
  field.scrollIntoView({ block: "center" });
  field.focus();
}

// The catalog id the video ran with (``model`` may be an alias such as sora-2).
function videoModel(video) {
  return video?.openreel?.model || video?.model || null;
}

export function errorView(error, video = null) {
  const { sentence, action, details } = explainError(error);
  const parts = [el("p", { class: "error-sentence" }, sentence)];
  const model = videoModel(video);
  if (error?.code === "weights_missing" && model) {
    // The models view opens on this model with its download started.
    const download = () => document.dispatchEvent(new CustomEvent("openreel:download-model", { detail: { model } }));
    parts.push(el("button", { type: "button", class: "secondary", onclick: download }, ACTION_LABELS["download-model"]));
  }
  if (action) {
    parts.push(
      el(
        "button",
        { type: "button", class: "secondary", onclick: () => focusComposer(action) },
        ACTION_LABELS[action],
      ),
    );
  }
  if (details && details !== sentence) {
    const summary = el("summary", {}, "What the server said");
    parts.push(el("details", { class: "error-details" }, summary, el("p", {}, details)));
  }
  return parts;
}
