// Plume Platform: copy buttons and live task status. Pages work without this script; it
// only saves a reload. No inline script anywhere (the Content-Security-Policy forbids it).
"use strict";

function copyFrom(button) {
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = source.textContent;
  const done = () => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => selectText(source));
  } else {
    selectText(source);
  }
}

// Where the clipboard is not available (plain http on a LAN address), select the text so
// the user can copy it themselves.
function selectText(node) {
  const range = document.createRange();
  range.selectNodeContents(node);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

function firstImage(result) {
  if (!result) return null;
  if (result.imageUrl) return { url: result.imageUrl, video: false };
  const part = result.parts && result.parts[0];
  if (!part) return null;
  if (part.posterUrl) return { url: part.posterUrl, video: false };
  return part.videoUrl ? { url: part.videoUrl, video: true } : null;
}

function render(node, task) {
  node.dataset.status = String(task.status);
  const status = node.querySelector('[data-role="status"]');
  if (status) {
    status.textContent = task.status_text;
    status.className = "badge status-" + task.status_text;
  }
  const progress = node.querySelector('[data-role="progress"]');
  if (progress) { progress.value = task.progress; progress.textContent = task.progress + "%"; }
  const error = node.querySelector('[data-role="error"]');
  if (error && task.error) {
    error.textContent = node.classList.contains("task") ? task.error.code + ": " + task.error.message : task.error.message;
  }
  const finished = node.querySelector('[data-role="finished"]');
  if (finished && task.finished_at) finished.textContent = task.finished_at;
  const thumb = node.querySelector('[data-role="thumb"]');
  const image = firstImage(task.result);
  if (thumb && image && thumb.tagName === "SPAN") {
    const media = document.createElement(image.video ? "video" : "img");
    // Images are shown through the server's small thumbnail, not the full result.
    media.src = image.video ? image.url : "/tasks/" + task.id + "/thumb";
    media.dataset.role = "thumb";
    if (image.video) { media.preload = "metadata"; media.muted = true; } else { media.alt = "Result of task " + task.id; }
    thumb.replaceWith(media);
  }
  const results = node.querySelector('[data-role="results"]');
  if (results && task.status === 3 && !results.children.length) {
    (task.result.imageUrls || []).forEach((url, i) => {
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.src = url; img.alt = "Result image " + (i + 1) + " of task " + task.id;
      const caption = document.createElement("figcaption");
      const link = document.createElement("a");
      link.href = url; link.download = ""; link.textContent = "Download image " + (i + 1);
      caption.appendChild(link); figure.append(img, caption); results.appendChild(figure);
    });
    (task.result.parts || []).forEach((part, i) => {
      const figure = document.createElement("figure");
      const video = document.createElement("video");
      video.src = part.videoUrl; video.controls = true; video.preload = "metadata";
      if (part.posterUrl) video.poster = part.posterUrl;
      const caption = document.createElement("figcaption");
      const link = document.createElement("a");
      link.href = part.videoUrl; link.download = ""; link.textContent = "Download video " + (i + 1);
      caption.appendChild(link); figure.append(video, caption); results.appendChild(figure);
    });
  }
}

// Long-polls one running task until it ends: the server answers as soon as its status or
// progress changes, or after `wait` seconds.
async function follow(node) {
  let failures = 0;
  while (Number(node.dataset.status) < 3 && document.body.contains(node)) {
    try {
      const response = await fetch("/api/portal/tasks/" + node.dataset.task + "?wait=25", {
        credentials: "same-origin", headers: { Accept: "application/json" },
      });
      if (response.status === 401 || response.status === 404) return;
      const body = await response.json();
      if (body && body.success && body.data) { render(node, body.data); failures = 0; }
      else throw new Error("bad answer");
    } catch (e) {
      failures += 1;
      await new Promise((r) => setTimeout(r, Math.min(30000, 1000 * 2 ** failures)));
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button[data-copy]").forEach((b) => b.addEventListener("click", () => copyFrom(b)));
  document.querySelectorAll("[data-task]").forEach((node) => {
    if (Number(node.dataset.status) < 3) follow(node);
  });
});
