// leafprep serve: the page. Plain JavaScript, no library, nothing from outside this server.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const STEP_TITLES = {
    photo: "photo",
    light: "light corrected",
    mask: "mask",
    crop: "crop",
    input: "the network's input",
  };
  const state = { runs: [], run: null, limits: null, sequence: 0, controller: null, drawing: false, inked: false };

  const percent = (p) => `${(100 * p).toFixed(p >= 0.995 || p < 0.001 ? 0 : 1)}%`;
  const megabytes = (bytes) => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;

  function element(tag, attributes = {}, text = "") {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  // --- runs ---------------------------------------------------------------------------------

  async function loadRuns() {
    let data;
    try {
      const response = await fetch("/api/runs");
      data = await response.json();
      if (!response.ok) throw new Error(data.message || response.statusText);
    } catch (error) {
      showError(`The server cannot list its runs: ${error.message}`);
      return;
    }
    state.runs = data.runs;
    state.limits = data.limits;
    const select = $("run");
    select.replaceChildren(...data.runs.map((run) => element("option", { value: run.name }, `${run.name} (${run.kind})`)));
    select.value = data.default;
    $("limits").textContent = `Photos up to ${megabytes(data.limits.max_upload_bytes)}; nothing is kept.`;
    choose(data.default);
  }

  function choose(name) {
    state.run = state.runs.find((run) => run.name === name);
    const run = state.run;
    const accuracy = run.test_accuracy ?? run.val_accuracy;
    const labels = run.labels.length > 12 ? `${run.labels.slice(0, 12).join(", ")}, …` : run.labels.join(", ");
    const facts = [
      ["kind", run.kind],
      ["input", `${run.image_shape[0]}x${run.image_shape[1]}${run.kind === "leaf" ? ` ${run.mode}` : ""}`],
      ["model", run.model || "?"],
      [`${run.labels.length} classes`, labels],
      [run.test_accuracy != null ? "test accuracy" : run.val_accuracy != null ? "validation accuracy" : "accuracy", accuracy != null ? percent(accuracy) : "not measured"],
    ];
    $("facts").replaceChildren(...facts.flatMap(([term, value]) => [element("dt", {}, term), element("dd", {}, value)]));
    $("draw-panel").hidden = run.kind !== "digit";
    $("answer-box").hidden = true;
    hideError();
    setStatus(run.kind === "leaf" ? "Give a photo of a leaf." : "Draw a digit or give a photo.");
  }

  // --- asking the server --------------------------------------------------------------------

  async function send(blob, name) {
    hideError();
    if (state.limits && blob.size > state.limits.max_upload_bytes) {
      showError(`${name}: the photo is ${megabytes(blob.size)}, over the server's limit of ${megabytes(state.limits.max_upload_bytes)}`);
      return;
    }
    const sequence = ++state.sequence;
    if (state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    const form = new FormData();
    form.append("file", blob, name);
    setStatus("reading…");
    try {
      const query = new URLSearchParams({ run: state.run.name, steps: "true" });
      const response = await fetch(`/api/predict?${query}`, { method: "POST", body: form, signal: controller.signal });
      const data = await response.json().catch(() => null);
      if (sequence !== state.sequence) return;
      if (!response.ok) {
        showError(data && data.message ? data.message : `${response.status} ${response.statusText}`);
        setStatus("");
        return;
      }
      show(data);
      setStatus(`read in ${Math.round(1000 * Object.values(data.seconds).reduce((a, b) => a + b, 0))} ms`);
    } catch (error) {
      if (error.name === "AbortError") return;
      if (sequence === state.sequence) {
        showError(`The server cannot be reached: ${error.message}`);
        setStatus("");
      }
    }
  }

  // --- showing an answer --------------------------------------------------------------------

  function show(data) {
    $("answer-box").hidden = false;
    const leaves = data.leaves || [];
    const objects = data.kind === "leaf" ? leaves : data.digits;
    $("answer").textContent = data.sheet && data.kind !== "leaf" ? data.number : data.label;
    $("answer-probability").textContent = data.sheet && data.kind !== "leaf" ? "" : percent(data.probability);
    let what = `${data.kind === "leaf" ? "the species" : "the class"} most likely, and its probability`;
    if (data.sheet && data.kind === "leaf") what = `the species most likely over ${leaves.length} leaves; each leaf below, numbered as on the photo`;
    else if (data.sheet) what = `${data.digits.length} digits read, left to right and top to bottom`;
    $("what").textContent = what;
    $("warnings").replaceChildren(
      ...data.warnings.map((text) => element("li", { class: "warning" }, text)),
      ...data.notes.map((text) => element("li", { class: "note" }, text)),
    );

    $("sheet").hidden = !data.sheet;
    $("sheet-title").textContent = data.kind === "leaf" ? "Every leaf of the photo" : "Every digit of the sheet";
    $("digits").replaceChildren(
      ...objects.map((found, position) => {
        const noun = data.kind === "leaf" ? "leaf" : "digit";
        const cell = element("figure", { class: `digit ${noun}` });
        if (found.input) cell.append(element("img", { src: found.input, alt: `${noun} read as ${found.label}`, class: "pixelated" }));
        const number = data.kind === "leaf" ? `${String(position).padStart(2, "0")}: ` : "";
        cell.append(element("figcaption", {}, `${number}${found.label} ${percent(found.probability)}`));
        return cell;
      }),
    );

    $("top-title").textContent = data.sheet ? (data.kind === "leaf" ? "Top species over every leaf" : "Top classes of the first digit") : "Top classes";
    $("top").replaceChildren(...data.top.map(bar));

    const steps = data.steps || {};
    $("steps").classList.toggle("of-sheet", data.sheet);
    $("steps").replaceChildren(
      ...Object.entries(steps).map(([key, src]) => {
        const figure = element("figure", { class: `step step-${key}` });
        const image = element("img", { src, alt: STEP_TITLES[key] || key });
        if (key === "input" || key === "crop") image.classList.add("pixelated");
        figure.append(image, element("figcaption", {}, STEP_TITLES[key] || key));
        return figure;
      }),
    );

    const attention = data.attention;
    $("attention-figure").hidden = !attention;
    if (attention) {
      $("attention").src = attention.picture;
      $("attention-caption").textContent = attention.method === "gradcam" ? "Grad-CAM: where the network looked" : "saliency: the pixels that move the answer most";
    }
    showLearned(data.learned);
  }

  function bar(entry) {
    const item = element("li");
    const fill = element("span", { class: "fill" });
    fill.style.width = `${Math.max(0.5, 100 * entry.probability)}%`;
    const track = element("span", { class: "track" });
    track.append(fill);
    item.append(element("span", { class: "label" }, entry.label), track, element("span", { class: "probability" }, percent(entry.probability)));
    return item;
  }

  function showLearned(learned) {
    const image = $("learned");
    const caption = $("learned-caption");
    if (!learned) {
      $("learned-figure").hidden = true;
      return;
    }
    $("learned-figure").hidden = false;
    const text =
      learned.what === "weights"
        ? `the weights of “${learned.label}”: blue where ink speaks for it, red against`
        : `a dream of “${learned.label}”: an input the network takes for it`;
    if (image.dataset.url === learned.url && image.complete) return;
    image.dataset.url = learned.url;
    image.classList.add("waiting");
    caption.textContent = learned.what === "dream" ? "dreaming… (seconds the first time)" : "drawing the weights…";
    image.onload = () => {
      image.classList.remove("waiting");
      caption.textContent = text;
    };
    image.onerror = () => {
      image.classList.remove("waiting");
      caption.textContent = "the server could not draw what the network learned (busy?)";
    };
    image.src = learned.url;
  }

  function setStatus(text) {
    $("status").textContent = text;
  }

  function showError(text) {
    const box = $("error");
    box.textContent = text;
    box.hidden = false;
  }

  function hideError() {
    $("error").hidden = true;
  }

  // --- drawing ------------------------------------------------------------------------------

  const pad = $("pad");
  const pen = pad.getContext("2d");

  function clearPad() {
    pen.fillStyle = "#fff";
    pen.fillRect(0, 0, pad.width, pad.height);
    state.inked = false;
  }

  function point(event) {
    const box = pad.getBoundingClientRect();
    return [((event.clientX - box.left) * pad.width) / box.width, ((event.clientY - box.top) * pad.height) / box.height];
  }

  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    state.drawing = true;
    pen.lineWidth = pad.width / 15;
    pen.lineCap = "round";
    pen.lineJoin = "round";
    pen.strokeStyle = "#111";
    const [x, y] = point(event);
    pen.beginPath();
    pen.moveTo(x, y);
    pen.lineTo(x + 0.01, y);
    pen.stroke();
    state.inked = true;
  });

  pad.addEventListener("pointermove", (event) => {
    if (!state.drawing) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const each of events.length ? events : [event]) {
      const [x, y] = point(each);
      pen.lineTo(x, y);
    }
    pen.stroke();
  });

  const lift = (event) => {
    if (!state.drawing) return;
    state.drawing = false;
    if (pad.hasPointerCapture(event.pointerId)) pad.releasePointerCapture(event.pointerId);
    if (state.inked) pad.toBlob((blob) => blob && send(blob, "drawing.png"), "image/png");
  };
  pad.addEventListener("pointerup", lift);
  pad.addEventListener("pointercancel", lift);

  $("clear").addEventListener("click", () => {
    clearPad();
    state.sequence++;
    $("answer-box").hidden = true;
    hideError();
    setStatus("Draw a digit or give a photo.");
  });

  // --- photos -------------------------------------------------------------------------------

  for (const id of ["file", "camera"]) {
    $(id).addEventListener("change", (event) => {
      const file = event.target.files[0];
      if (file) send(file, file.name || "photo");
      event.target.value = "";
    });
  }

  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) send(file, file.name || "dropped photo");
  });

  document.addEventListener("paste", (event) => {
    const file = [...(event.clipboardData ? event.clipboardData.files : [])].find((each) => each.type.startsWith("image/"));
    if (file) {
      event.preventDefault();
      send(file, file.name || "pasted image");
    }
  });

  $("run").addEventListener("change", (event) => choose(event.target.value));

  clearPad();
  loadRuns();
})();
