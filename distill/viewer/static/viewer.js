// distill view: render math, keep the filter URL short. No network access: the page's
// Content-Security-Policy allows only this server's own files.
"use strict";

function renderMath() {
  if (typeof renderMathInElement !== "function") return;
  for (const el of document.querySelectorAll(".math")) {
    // auto-render walks text nodes only: model text is never parsed as HTML.
    renderMathInElement(el, {
      delimiters: [
        { left: "$$", right: "$$", display: true },
        { left: "\\[", right: "\\]", display: true },
        { left: "\\(", right: "\\)", display: false },
        { left: "$", right: "$", display: false },
      ],
      throwOnError: false,
      trust: false,
      strict: "ignore",
      maxExpand: 1000,
      maxSize: 50,
    });
  }
  document.body.dataset.math = "rendered";
}

function tidyFilters() {
  const form = document.getElementById("filters");
  if (!form) return;
  // Empty and default fields stay out of the URL, so a shared link names only the filters in use.
  form.addEventListener("submit", () => {
    for (const field of form.elements) {
      if (field.name && (field.value === "" || field.value === field.dataset.default)) field.disabled = true;
    }
  });
  for (const select of form.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => form.requestSubmit());
  }
}

function walkWithKeys() {
  // j / k (or the arrow keys) step through the list a sample was opened from.
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target.closest("input, select, textarea")) return;
    const rel = { j: "next", ArrowRight: "next", k: "prev", ArrowLeft: "prev" }[event.key];
    const link = rel && document.querySelector(`nav.walk a[rel=${rel}]`);
    if (link) link.click();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  walkWithKeys();
  tidyFilters();
  renderMath();
});
// A page restored from the back-forward cache keeps disabled fields: enable them again.
window.addEventListener("pageshow", () => {
  for (const field of document.querySelectorAll("#filters [disabled]")) field.disabled = false;
});
