// Previews: fetched from the app's own origin (never the crawled URL), shown blurred and
// greyscale as the server made them; "Reveal" asks the server for the unblurred version.
"use strict";
(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var statusText = {
    "gone": "Gone: the media no longer serves.",
    "refused": "Not fetched: the address is outside the crawl policy.",
    "unsupported": "No preview: not a raster image (SVG, HTML and other formats are never shown).",
    "too-large": "No preview: the media is larger than the policy allows.",
    "rate-limited": "Too many previews in a minute; try again shortly.",
    "metadata-only": "Metadata only."
  };
  function explain(resp) {
    var kind = resp.headers.get("X-Preview-Status") || "";
    return statusText[kind] || ("Preview unavailable (" + resp.status + ").");
  }
  function show(figure, resp, state) {
    var img = figure.querySelector("img");
    var status = figure.querySelector(".preview-status");
    if (!resp.ok) {
      status.textContent = explain(resp);
      figure.setAttribute("data-outcome", resp.headers.get("X-Preview-Status") || "error");
      return;
    }
    return resp.blob().then(function (blob) {
      var old = img.getAttribute("src");
      img.onload = function () { if (old) { URL.revokeObjectURL(old); } };
      img.removeAttribute("width");
      img.removeAttribute("height");
      img.setAttribute("src", URL.createObjectURL(blob));
      img.setAttribute("data-state", state);
      figure.setAttribute("data-outcome", state);
      status.textContent = state === "revealed" ? "Revealed (unblurred, downscaled)." : "Blurred, greyscale preview.";
    });
  }
  document.querySelectorAll("figure.preview").forEach(function (figure) {
    fetch(figure.getAttribute("data-preview"), { credentials: "same-origin", cache: "no-store" })
      .then(function (resp) { return show(figure, resp, "blurred"); })
      .catch(function () { figure.querySelector(".preview-status").textContent = "Preview unavailable."; });
    var button = figure.querySelector("button.reveal");
    button.addEventListener("click", function () {
      button.disabled = true;
      fetch(figure.getAttribute("data-reveal"), {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "X-CSRF-Token": csrf }
      }).then(function (resp) { return show(figure, resp, "revealed"); })
        .catch(function () { button.disabled = false; });
    });
  });
  // Keep the lease while the item page stays open: renew every five minutes.
  var renew = document.getElementById("renew-form");
  if (renew) {
    setInterval(function () {
      fetch(renew.getAttribute("action"), {
        method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf }
      });
    }, 300000);
  }
  // Confirm-match items: one keystroke accepts (a) or refuses (r) the match.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) { return; }
    var button = document.querySelector('button[data-key="' + event.key + '"]');
    if (button) { event.preventDefault(); button.click(); }
  });
})();
