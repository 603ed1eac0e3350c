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
    wireReveal(figure, show);
  });
  function wireReveal(figure, render) {
    var button = figure.querySelector("button.reveal");
    button.addEventListener("click", function () {
      // Wellness setting: a reveal may need a second press (the name stays "Reveal").
      if (document.body.getAttribute("data-reveal-confirm") === "yes" && !button.hasAttribute("data-armed")) {
        button.setAttribute("data-armed", "1");
        figure.querySelector(".preview-status").textContent = "Press Reveal again to unblur this media.";
        return;
      }
      button.removeAttribute("data-armed");
      button.disabled = true;
      countReveal();
      fetch(figure.getAttribute("data-reveal"), {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "X-CSRF-Token": csrf }
      }).then(function (resp) { return render(figure, resp, "revealed"); })
        .catch(function () { button.disabled = false; });
    });
  }
  // Videos: a strip of keyframes the server decoded and re-encoded (PNG in JSON); the
  // video itself never reaches the browser, so nothing can play or make a sound.
  function clockText(t) {
    var s = Math.max(0, Math.floor(t)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(sec).padStart(2, "0");
  }
  function pngBlob(b64) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return new Blob([bytes], { type: "image/png" });
  }
  function showStrip(figure, resp, state) {
    var status = figure.querySelector(".preview-status");
    if (!resp.ok) {
      status.textContent = explain(resp);
      figure.setAttribute("data-outcome", resp.headers.get("X-Preview-Status") || "error");
      return;
    }
    return resp.json().then(function (data) {
      var list = figure.querySelector("ol.strip");
      var n = figure.getAttribute("data-media-number");
      list.querySelectorAll("img").forEach(function (img) { URL.revokeObjectURL(img.src); });
      list.textContent = "";
      data.frames.forEach(function (f) {
        var li = document.createElement("li");
        if (f.match) { li.className = "match"; }
        var box = document.createElement("div");
        box.className = "frame";
        var img = document.createElement("img");
        img.alt = "Media " + n + " at " + clockText(f.t) + (f.match ? ", the matching frame" : "") +
          (state === "blurred" ? " (blurred, greyscale)" : "");
        img.setAttribute("data-state", state);
        img.setAttribute("src", URL.createObjectURL(pngBlob(f.png)));
        box.appendChild(img);
        li.appendChild(box);
        var caption = document.createElement("span");
        caption.textContent = clockText(f.t) + (f.match ? " · match" : "");
        li.appendChild(caption);
        list.appendChild(li);
      });
      figure.setAttribute("data-outcome", state);
      status.textContent = state === "revealed" ? "Revealed keyframes (unblurred, downscaled)."
        : data.frames.length + " blurred, greyscale keyframes; the video is never played.";
    });
  }
  document.querySelectorAll("figure.keyframes").forEach(function (figure) {
    fetch(figure.getAttribute("data-keyframes"), { credentials: "same-origin", cache: "no-store" })
      .then(function (resp) { return showStrip(figure, resp, "blurred"); })
      .catch(function () { figure.querySelector(".preview-status").textContent = "Keyframes unavailable."; });
    wireReveal(figure, showStrip);
  });
  // --- break reminder (wellness settings: after N minutes or N reveals) ------------------
  var body = document.body;
  var breakMinutes = parseInt(body.getAttribute("data-break-minutes") || "0", 10) || 0;
  var breakReveals = parseInt(body.getAttribute("data-break-reveals") || "0", 10) || 0;
  function stored(key, fallback) {
    try { var v = window.localStorage.getItem(key); return v === null ? fallback : v; } catch (e) { return fallback; }
  }
  function store(key, value) { try { window.localStorage.setItem(key, String(value)); } catch (e) { /* private mode */ } }
  if (!stored("td-break-since", null)) { store("td-break-since", Date.now()); }
  function countReveal() {
    store("td-reveals-since-break", (parseInt(stored("td-reveals-since-break", "0"), 10) || 0) + 1);
    checkBreak();
  }
  function checkBreak() {
    var box = document.getElementById("break-reminder");
    if (!box) { return; }
    var minutes = (Date.now() - (parseInt(stored("td-break-since", "0"), 10) || Date.now())) / 60000;
    var reveals = parseInt(stored("td-reveals-since-break", "0"), 10) || 0;
    var why = "";
    if (breakMinutes > 0 && minutes >= breakMinutes) { why = Math.floor(minutes) + " minutes"; }
    else if (breakReveals > 0 && reveals >= breakReveals) { why = reveals + (reveals === 1 ? " reveal" : " reveals"); }
    if (!why || !box.hidden) { return; }
    box.textContent = "";
    var text = document.createElement("span");
    text.textContent = "Time for a break: " + why + " since your last one.";
    var done = document.createElement("button");
    done.type = "button";
    done.textContent = "I took a break";
    done.addEventListener("click", function () {
      store("td-break-since", Date.now());
      store("td-reveals-since-break", 0);
      box.hidden = true;
    });
    box.appendChild(text);
    box.appendChild(done);
    box.hidden = false;
  }
  checkBreak();
  setInterval(checkBreak, 60000);

  // --- keyboard shortcuts (listed on the "?" panel and in docs/review.md) --------------
  // Every shortcut presses a button or submits a form that is on the page, so the server's
  // checks (CSRF, the item version) apply exactly as for a click.
  var hint = document.getElementById("key-hint");
  var armed = null;
  var hintTimer = null;
  function say(text) {
    if (!hint) { return; }
    hint.textContent = text;
    clearTimeout(hintTimer);
    hintTimer = setTimeout(function () { hint.textContent = ""; }, 4000);
  }
  function typing(el) {
    if (!el || el === document.body) { return false; }
    var tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable) { return true; }
    if (tag === "INPUT") {
      var type = (el.getAttribute("type") || "text").toLowerCase();
      return ["checkbox", "radio", "button", "submit", "reset", "hidden"].indexOf(type) < 0;
    }
    return false;
  }
  function mediaArticles() { return Array.prototype.slice.call(document.querySelectorAll("article.media")); }
  function current() {
    var list = mediaArticles();
    var focused = document.activeElement && document.activeElement.closest ? document.activeElement.closest("article.media") : null;
    return focused || list.filter(function (a) { return a.hasAttribute("data-current"); })[0] || null;
  }
  function focusMedia(index) {
    var list = mediaArticles();
    if (index < 0 || index >= list.length) { return null; }
    list.forEach(function (a) { a.removeAttribute("data-current"); });
    var target = list[index];
    target.setAttribute("data-current", "1");
    if (!target.hasAttribute("tabindex")) { target.setAttribute("tabindex", "-1"); }
    target.focus();
    target.scrollIntoView({ block: "nearest" });
    return target;
  }
  function illegalBox(n) {
    // The media's boxes sit in the media grid, tied to the form by form="decision-form".
    var boxes = document.querySelectorAll('form.decision input[type="checkbox"], input[type="checkbox"][form="decision-form"]');
    var want = "illegal: media " + n;
    for (var i = 0; i < boxes.length; i++) {
      var b = boxes[i];
      var name = (b.getAttribute("aria-label") || (b.labels && b.labels[0] ? b.labels[0].textContent : "") || "").trim().toLowerCase();
      if (name === want || name.indexOf(want + " ") === 0 || name.indexOf(want + "(") === 0) { return b; }
    }
    return null;
  }
  function decisionButton(action) {
    return document.querySelector('form.decision button[name="action"][value="' + action + '"]');
  }
  function decide(action, label) {
    var button = decisionButton(action);
    if (!button) { say("No " + label + " on this page."); return; }
    if (armed !== button) {
      if (armed) { armed.removeAttribute("data-armed"); }
      armed = button;
      button.setAttribute("data-armed", "1");
      say("Press again to " + label + "; Escape cancels.");
      return;
    }
    button.removeAttribute("data-armed");
    armed = null;
    button.form.requestSubmit(button);
  }
  function submitForm(form) { if (form) { form.requestSubmit(); return true; } return false; }
  var help = document.getElementById("shortcuts");
  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var key = event.key;
    if (key === "Escape") {
      if (armed) { armed.removeAttribute("data-armed"); armed = null; say("Cancelled."); }
      if (typing(event.target)) { event.target.blur(); }
      return;
    }
    if (typing(event.target) || (help && help.open && key !== "?")) { return; }
    var handled = true;
    if (key === "?") {
      if (help) { if (help.open) { help.close(); } else { help.showModal(); } }
    } else if (key === "n") {
      if (!submitForm(document.querySelector("form.queue-actions") || document.getElementById("next-form"))) { handled = false; }
    } else if (key === "q") {
      window.location.assign("/queue");
    } else if (/^[1-9]$/.test(key)) {
      var n = parseInt(key, 10);
      var article = focusMedia(n - 1);
      var box = illegalBox(n);
      if (box) {
        box.checked = !box.checked;
        box.dispatchEvent(new Event("change", { bubbles: true }));
        say("Media " + n + ": " + (box.checked ? "ticked illegal" : "not ticked"));
      } else if (!article) { handled = false; }
    } else if (key === "j" || key === "k") {
      var list = mediaArticles();
      var at = list.indexOf(current());
      focusMedia(key === "j" ? Math.min(at + 1, list.length - 1) : Math.max(at - 1, 0));
    } else if (key === "v") {
      var media = current() || mediaArticles()[0];
      var reveal = media ? media.querySelector("button.reveal") : null;
      if (reveal && !reveal.disabled) { reveal.click(); } else { say("No media to reveal here."); }
    } else if (key === "g") {
      var category = document.getElementById("category");
      if (category) { category.focus(); } else { handled = false; }
    } else if (key === "o") {
      var notes = document.getElementById("notes");
      if (notes) { notes.focus(); } else { handled = false; }
    } else if (key === "c") {
      decide("confirm", "confirm");
    } else if (key === "r") {
      decide("reject", "reject");
    } else if (key === "e") {
      decide("escalate", "escalate");
    } else if (key === "h") {
      if (!submitForm(document.getElementById("renew-form"))) { say("You do not hold this item."); }
    } else {
      handled = false;
    }
    if (handled) { event.preventDefault(); }
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
