// The viewer of one video: the video large with its controls, what was asked, the recipe (how it
// was made), its credits and its provenance (C2PA manifest and watermark, checked by the server),
// and what can be done with it. A <dialog> opened modally, so focus stays inside it and Escape
// closes it.

import { api, ApiError, mediaUrl } from "./api.js";
import { definitionList, el, formatSeconds, formatTime } from "./dom.js";
import { lineage } from "./lineage.js";

// describe(id) / show(id): a parent video's short name in the gallery, and bringing it into view.
export function createDetails({ onReuse, onEdit, describe, show }) {
  const dialog = document.getElementById("details");
  const body = document.getElementById("details-body");
  let opened = 0; // answers for a panel that was closed or reopened since are dropped

  document.getElementById("details-close").addEventListener("click", () => dialog.close());
  // A closed viewer must not keep playing (or downloading) behind the page.
  dialog.addEventListener("close", () => {
    for (const player of body.querySelectorAll("video")) {
      player.pause();
      player.removeAttribute("src");
      player.load();
    }
  });
  // A click on the backdrop (outside the panel's box) closes it too.
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) {
      const box = dialog.getBoundingClientRect();
      const inside = event.clientX >= box.left && event.clientX <= box.right && event.clientY >= box.top && event.clientY <= box.bottom;
      if (!inside) dialog.close();
    }
  });

  function section(id, title, ...content) {
    return el("section", { class: "detail-section", id, "aria-labelledby": `${id}-title` }, el("h3", { id: `${id}-title` }, title), ...content);
  }

  function row(list, term, value) {
    if (value === null || value === undefined || value === "") return;
    list.append(el("dt", {}, term), el("dd", {}, value));
  }

  function askedSection(video, variation) {
    const info = video.openreel || {};
    const list = el("dl", { class: "facts" });
    row(list, "Id", el("code", {}, video.id));
    row(list, "Status", video.status.replace("_", " "));
    row(list, "Model", info.model && info.model !== video.model ? `${video.model} (runs as ${info.model})` : video.model);
    row(list, "Size", video.size);
    row(list, "Duration", formatSeconds(video.seconds));
    const origin = lineage(video, { describe, show: (id) => { dialog.close(); show(id); } });
    if (origin) row(list, "Made from", el("span", { class: "lineage" }, ...origin));
    row(list, "Created", formatTime(video.created_at));
    row(list, "Finished", formatTime(video.completed_at));
    const output = (info.outputs || []).find((item) => item.variation === variation);
    if (output) row(list, "Seed", `${output.seed}${info.outputs.length > 1 ? ` (variation ${variation} of ${info.outputs.length})` : ""}`);
    if (video.error) row(list, "Error", video.error.message || video.error.code);
    return section("details-video", "The video", el("p", { class: "details-prompt" }, video.prompt || ""), list);
  }

  function recipeContent(recipe, variation) {
    const spec = recipe.spec || {};
    const plan = recipe.plan || {};
    const made = (recipe.variations || []).find((item) => item.variation === variation) || {};
    const asked = el("dl", { class: "facts" });
    row(asked, "Prompt", spec.prompt);
    row(asked, "Negative prompt", spec.negative_prompt);
    row(asked, "Style", spec.style);
    row(asked, "Model", recipe.model ? `${recipe.model.id} (${recipe.model.family})` : spec.model);
    row(asked, "Seed", made.seed ?? spec.seed);
    row(asked, "Steps", plan.steps ?? spec.steps);
    row(asked, "Guidance", plan.guidance ?? spec.guidance);
    row(asked, "Output", spec.width ? `${spec.width}×${spec.height} at ${spec.fps} fps, ${formatSeconds(spec.seconds)}` : null);
    row(asked, "Generated at", plan.width ? `${plan.width}×${plan.height}, ${plan.num_frames} frames at ${plan.native_fps} fps` : null);
    row(asked, "Prompt the model saw", plan.prompt && plan.prompt !== spec.prompt ? plan.prompt : null);
    row(asked, "Negative prompt the model saw", plan.negative_prompt && plan.negative_prompt !== spec.negative_prompt ? plan.negative_prompt : null);
    row(asked, "Upscale", plan.upscale?.reason);
    row(asked, "Frame rate", plan.retime?.reason);
    row(asked, "Quality", plan.quality_note || (spec.quality && spec.quality !== "standard" ? spec.quality : null));
    row(asked, "LoRAs", spec.loras?.length ? spec.loras.map((lora) => `${lora.source} × ${lora.scale}`).join(", ") : null);
    row(asked, "Memory", plan.memory?.reason);
    row(asked, "Device", plan.device ? `${plan.device} (${plan.dtype})` : null);
    row(asked, "openreel", recipe.openreel_version);
    return [
      asked,
      el("details", { class: "raw" }, el("summary", {}, "Recipe as JSON"), el("pre", {}, JSON.stringify(recipe, null, 2))),
    ];
  }

  function provenanceContent(report) {
    const manifest = report.manifest || {};
    const mark = report.watermark || {};
    const list = el("dl", { class: "facts" });
    const state = !manifest.present
      ? "No C2PA manifest"
      : manifest.tampered
        ? "Changed after signing"
        : manifest.trusted
          ? "Signed, valid and trusted"
          : manifest.valid
            ? "Signed and valid (signer not trusted on this server)"
            : "Manifest invalid";
    row(list, "Content credentials (C2PA)", state);
    if (manifest.signer) {
      row(list, "Signed by", [manifest.signer.common_name, manifest.signer.issuer && `issued by ${manifest.signer.issuer}`].filter(Boolean).join(", "));
    }
    row(
      list,
      "Invisible watermark",
      mark.found ? `found (confidence ${Number(mark.confidence).toFixed(2)})` : `not found in ${mark.frames_examined ?? 0} frames`,
    );
    return [
      el("p", { class: "summary" }, report.summary || ""),
      list,
      el("details", { class: "raw" }, el("summary", {}, "Provenance report as JSON"), el("pre", {}, JSON.stringify(report, null, 2))),
    ];
  }

  function failed(what, error) {
    const message = error instanceof ApiError ? error.message : String(error);
    return el("p", { class: "video-error" }, `The ${what} could not be loaded: ${message}`);
  }

  function player(video, variation) {
    if (video.status !== "completed") return null;
    const node = el("video", {
      class: "viewer-video",
      controls: true,
      loop: true,
      playsinline: true,
      preload: "metadata",
      "aria-label": `Video: ${video.prompt || video.id}`,
    });
    const [width, height] = (video.size || "16x9").split("x").map(Number);
    node.style.setProperty("--aspect", `${width} / ${height}`);
    const ticket = opened;
    mediaUrl(video.id, "thumbnail", variation).then((url) => ticket === opened && node.setAttribute("poster", url)).catch(() => {});
    mediaUrl(video.id, "video", variation)
      .then((url) => {
        if (ticket === opened) node.src = url;
      })
      .catch((error) => node.replaceWith(failed("video", error)));
    return el("div", { class: "viewer-stage" }, node);
  }

  // actions: the gallery's buttons for this video (download, add to storyboard, delete).
  async function open(video, variation = 1, actions = []) {
    const ticket = ++opened;
    const recipeBox = section("details-recipe", "Recipe", el("p", { class: "muted" }, "Loading the recipe…"));
    const creditsBox = section("details-credits", "Credits", el("p", { class: "muted" }, "Loading…"));
    const provenanceBox = section("details-provenance", "Provenance", el("p", { class: "muted" }, "Checking the file…"));
    const reuse = el("button", { type: "button", class: "secondary", onclick: () => { dialog.close(); onReuse(video, variation); } }, "Use these settings again");
    body.replaceChildren(...[player(video, variation), askedSection(video, variation)].filter(Boolean));
    if (video.status === "completed") {
      body.append(recipeBox, creditsBox, provenanceBox);
    } else {
      body.append(el("p", { class: "muted" }, "The recipe, credits and provenance appear here when the video is finished."));
    }
    const edit = video.status === "completed"
      ? el("button", { type: "button", class: "secondary", onclick: () => { dialog.close(); onEdit(video); } }, "Edit this video")
      : null;
    // Right under the video, where the eye is: what can be done with it.
    const bar = el("div", { class: "actions viewer-actions" }, reuse, edit, ...actions);
    (body.querySelector(".viewer-stage") || body.querySelector("#details-video")).after(bar);
    if (!dialog.open) dialog.showModal();
    if (video.status !== "completed") return;

    const [recipe, provenance] = await Promise.allSettled([api.recipe(video.id, variation), api.provenance(video.id, variation)]);
    if (ticket !== opened) return;
    const keep = (box) => box.querySelector("h3");
    if (recipe.status === "fulfilled") {
      recipeBox.replaceChildren(keep(recipeBox), ...recipeContent(recipe.value, variation));
      creditsBox.replaceChildren(keep(creditsBox), definitionList(recipe.value.credits || {}));
    } else {
      recipeBox.replaceChildren(keep(recipeBox), failed("recipe", recipe.reason));
      creditsBox.replaceChildren(keep(creditsBox), failed("credits", recipe.reason));
    }
    if (provenance.status === "fulfilled") {
      provenanceBox.replaceChildren(keep(provenanceBox), ...provenanceContent(provenance.value));
    } else {
      provenanceBox.replaceChildren(keep(provenanceBox), failed("provenance report", provenance.reason));
    }
  }

  return { open };
}

// Settings for the composer from a finished video's recipe: the exact seed, steps and size that
// made the chosen variation, so pressing Create makes it again.
export function settingsFromRecipe(recipe, variation = 1) {
  const spec = recipe.spec || {};
  const made = (recipe.variations || []).find((item) => item.variation === variation);
  return {
    prompt: spec.prompt ?? "",
    negative_prompt: spec.negative_prompt ?? "",
    style: spec.style ?? "",
    model: recipe.model?.id ?? spec.model ?? "",
    seconds: spec.seconds ?? "",
    size_mode: "exact",
    size: spec.width && spec.height ? `${spec.width}x${spec.height}` : "",
    seed: made?.seed ?? spec.seed ?? "",
    steps: spec.steps ?? "",
    guidance: spec.guidance ?? "",
    fps: spec.fps ?? "",
    quality: spec.quality === "standard" ? "" : spec.quality ?? "",
    memory: spec.memory === "auto" ? "" : spec.memory ?? "",
    loras: spec.loras ?? [],
    audio: spec.audio ?? null,
    // Remaking one chosen variation of several needs only its own seed.
    variations: variation > 1 ? 1 : spec.variations ?? 1,
  };
}

// Settings from the Video object alone (a job not finished, or one whose recipe is gone).
export function settingsFromVideo(video, variation = 1) {
  const info = video.openreel || {};
  const output = (info.outputs || []).find((item) => item.variation === variation);
  const named = Boolean(info.resolution || info.aspect);
  return {
    prompt: video.prompt ?? "",
    negative_prompt: info.negative_prompt ?? "",
    style: info.style ?? "",
    model: video.model ?? "",
    seconds: video.seconds ?? "",
    size_mode: named ? "named" : "exact",
    size: named ? "" : video.size ?? "",
    resolution: info.resolution ?? "",
    aspect: info.aspect ?? "16:9",
    seed: output?.seed ?? info.seed ?? "",
    steps: info.steps ?? "",
    guidance: info.guidance ?? "",
    fps: info.fps ?? "",
    quality: info.quality ?? "",
    memory: info.memory ?? "",
    loras: info.loras ?? [],
    audio: info.audio ?? null,
    variations: info.variations ?? 1,
  };
}
