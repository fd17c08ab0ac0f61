// The composer's settings panel: the prompt bar shows the prompt and Create; everything else
// (style, model, duration, size, seed, ...) sits one click away behind "Settings". Any code that
// sends the keyboard to one of those fields (an error by field, "Pick another model") calls
// revealField first, because a control in a closed panel cannot take focus.

const PANEL = "composer-settings";
const BUTTON = "settings-button";

export function settingsOpen() {
  return !document.getElementById(PANEL).hidden;
}

export function setSettingsOpen(open) {
  const panel = document.getElementById(PANEL);
  panel.hidden = !open;
  document.getElementById(BUTTON).setAttribute("aria-expanded", String(open));
}

// Open whatever hides the control (the panel, a folded "More settings") so it can be focused.
export function revealField(control) {
  if (!control) return;
  if (control.closest(`#${PANEL}`)) setSettingsOpen(true);
  const folded = control.closest("details");
  if (folded) folded.open = true;
}

export function initSettingsPanel() {
  document.getElementById(BUTTON).addEventListener("click", () => {
    const open = !settingsOpen();
    setSettingsOpen(open);
    // Opening moves the keyboard to the first setting; closing leaves it on the button.
    if (open) document.getElementById(PANEL).querySelector("input, select, textarea")?.focus();
  });
}
