// Small behaviours shared by every page; htmx does the rest.
document.addEventListener("htmx:responseError", (event) => {
  const target = event.detail.target;
  if (target && event.detail.xhr.status >= 500) {
    target.insertAdjacentHTML("afterbegin", '<p class="error" role="alert">Something went wrong on the server. Please try again.</p>');
  } else if (target && event.detail.xhr.status === 400 && event.detail.xhr.responseText) {
    const note = document.createElement("p");
    note.className = "error";
    note.setAttribute("role", "alert");
    note.textContent = event.detail.xhr.responseText.slice(0, 300);
    target.prepend(note);
  }
});

// Builder: typing a value refreshes only the live count (debounced), so the focus stays where it is.
// Controls that change the structure (field, operator, buttons) post to the builder themselves; its
// answer triggers "refresh-preview" too (HX-Trigger).
let previewTimer;
document.addEventListener("input", (event) => {
  const form = event.target.closest("form[data-builder]");
  if (!form || event.target.closest("[data-no-preview]") || !event.target.name) return;
  clearTimeout(previewTimer);
  previewTimer = setTimeout(() => htmx.trigger(document.body, "refresh-preview"), 400);
});

// What is typed while a structural change is on its way would be reset by the new builder: keep it.
// (Not after a remove or a move: the same input id may then belong to another condition.)
const PATH_CHANGING = /^(remove|remove_item|move_up|move_down|wrap|unwrap)\|/;
let typedBefore = null;
let typedDuring = [];
function typedValues(root) {
  const values = {};
  root.querySelectorAll("input[id]:not([type=checkbox]):not([type=hidden]):not([type=search])")
    .forEach((input) => { values[input.id] = input.value; });
  return values;
}
let lastAction = "";
document.addEventListener("htmx:beforeRequest", (event) => {
  if (!event.detail.target || event.detail.target.id !== "builder") return;
  lastAction = event.detail.elt.value || "";
  typedBefore = PATH_CHANGING.test(lastAction) ? null : typedValues(event.detail.target);
});

// After a structural edit by button the button is gone: put the focus where the marketer works next.
// (Ids follow segments_app.builder.dom_id.)
function domId(path, prefix) {
  return prefix + "-" + (path.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-+|-+$/g, "") || "root");
}
const FOCUSABLE = "select, input:not([type=hidden]), button:not([disabled]), summary";
function focusAfter(action) {
  const [verb, target = ""] = action.split("|");
  const node = (path) => document.getElementById(domId(path, "node"));
  const last = (list) => (list && list.length ? list[list.length - 1] : null);
  let spot = null;
  if (verb === "add") {
    const added = last(node(target)?.querySelectorAll(":scope > .children > li > fieldset"));
    spot = added && added.querySelector("select, input:not([type=hidden])");
  } else if (verb === "add_filter") {
    const added = last(node(target)?.querySelectorAll(".filters li.filter"));
    spot = added && added.querySelector("select");
  } else if (verb === "add_item" || verb === "remove_item") {
    const list = verb === "add_item" ? target : target.replace(/\[\d+\]$/, "");
    spot = last(document.querySelectorAll(`input[name^="${list}["]`));
  } else if (verb === "move_up" || verb === "move_down") {
    const index = Number(target.match(/\[(\d+)\]$/)[1]) + (verb === "move_up" ? -1 : 1);
    const moved = node(target.replace(/\[\d+\]$/, `[${index}]`));
    spot = moved && (moved.querySelector(`button[value^="${verb}|"]:not([disabled])`) || moved.querySelector(FOCUSABLE));
  } else if (verb === "wrap") {
    spot = node(target)?.querySelector(FOCUSABLE);
  } else if (verb === "remove" || verb === "unwrap") {
    spot = node(target.replace(/\.?(conditions|filters)\[\d+\]$/, ""))?.querySelector(FOCUSABLE);
  }
  if (spot) spot.focus();
}
document.addEventListener("htmx:afterSettle", (event) => {
  if (event.detail.target && event.detail.target.id === "builder" && lastAction) {
    focusAfter(lastAction);
    lastAction = "";
  }
});
document.addEventListener("htmx:beforeSwap", (event) => {
  if (event.detail.target.id !== "builder" || !typedBefore) return;
  const now = typedValues(event.detail.target);
  typedDuring = Object.entries(now).filter(([id, value]) => typedBefore[id] !== value);
  typedBefore = null;
});
document.addEventListener("htmx:afterSettle", () => {
  if (!typedDuring.length) return;
  typedDuring.forEach(([id, value]) => {
    const input = document.getElementById(id);
    if (input) input.value = value;
  });
  typedDuring = [];
  htmx.trigger(document.body, "refresh-preview");
});

// Filter lists as you type: the condition picker and the templates gallery.
function filterList(input, itemSelector, sectionSelector, noneSelector) {
  const scope = input.closest("[data-filter-scope]") || input.closest("details") || document;
  const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
  let shown = 0;
  scope.querySelectorAll(itemSelector).forEach((item) => {
    const match = words.every((word) => item.dataset.search.includes(word));
    item.hidden = !match;
    if (match) shown += 1;
  });
  scope.querySelectorAll(sectionSelector).forEach((section) => {
    section.hidden = !section.querySelector(itemSelector + ":not([hidden])");
  });
  const none = scope.querySelector(noneSelector);
  if (none) none.hidden = shown > 0;
}

document.addEventListener("input", (event) => {
  if (event.target.matches("[data-picker-search]")) {
    filterList(event.target, "li[data-search]", "[data-picker-category]", ".picker-none");
  } else if (event.target.matches("[data-gallery-search]")) {
    filterList(event.target, "li[data-search]", "[data-gallery-category]", ".gallery-none");
  }
});

// The picker: focus its search box when it opens; Escape closes it and returns to its button.
document.addEventListener("toggle", (event) => {
  const details = event.target;
  if (details.matches && details.matches("details.picker") && details.open) {
    const search = details.querySelector("[data-picker-search]");
    if (search) search.focus();
  }
}, true);
document.addEventListener("keydown", (event) => {
  // Enter in the picker's search box chooses the first field still shown (instead of submitting the form).
  if (event.key === "Enter" && event.target.matches("[data-picker-search]")) {
    event.preventDefault();
    const first = event.target.closest("details").querySelector("li[data-search]:not([hidden]) button");
    if (first) first.click();
    return;
  }
  if (event.key !== "Escape") return;
  const details = event.target.closest && event.target.closest("details.picker[open]");
  if (details) {
    details.open = false;
    details.querySelector("summary").focus();
  }
});

// Suggestions for text values (tags, products, producers, countries...): a <datalist> filled from the server.
const suggestionTimers = new WeakMap();
function loadSuggestions(input) {
  const listId = input.getAttribute("list");
  let datalist = document.getElementById(listId);
  if (!datalist) {
    datalist = document.createElement("datalist");
    datalist.id = listId;
    document.body.appendChild(datalist);
  }
  const url = "/segments/suggest/?" + new URLSearchParams({ kind: input.dataset.suggest, q: input.value });
  fetch(url, { headers: { "HX-Request": "true" } })
    .then((response) => (response.ok ? response.text() : ""))
    .then((html) => { datalist.innerHTML = html; });
}
document.addEventListener("focusin", (event) => {
  if (event.target.matches("input[data-suggest]")) loadSuggestions(event.target);
});
document.addEventListener("input", (event) => {
  const input = event.target;
  if (!input.matches("input[data-suggest]")) return;
  clearTimeout(suggestionTimers.get(input));
  suggestionTimers.set(input, setTimeout(() => loadSuggestions(input), 250));
});

// Charts: a <canvas data-chart-source="id-of-json"> becomes the size history (Chart.js, loaded by that page).
function drawCharts(root) {
  if (typeof Chart === "undefined") return;
  root.querySelectorAll("canvas[data-chart-source]").forEach((canvas) => {
    const source = document.getElementById(canvas.dataset.chartSource);
    if (!source) return;
    const data = JSON.parse(source.textContent);
    const existing = Chart.getChart(canvas);
    if (existing) existing.destroy();
    new Chart(canvas, {
      data: {
        labels: data.labels,
        datasets: [
          { type: "line", label: "Members", data: data.size, yAxisID: "size", borderColor: "#3b5bdb",
            backgroundColor: "#3b5bdb", tension: 0.25, pointRadius: data.size.length > 60 ? 0 : 3, order: 0 },
          { type: "bar", label: "Entered", data: data.entered, yAxisID: "moves", backgroundColor: "rgba(43,138,62,.55)",
            maxBarThickness: 18, stack: "moves", order: 1 },
          { type: "bar", label: "Left", data: data.exited, yAxisID: "moves", backgroundColor: "rgba(201,42,42,.55)",
            maxBarThickness: 18, stack: "moves", order: 1 },
        ],
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { position: "bottom" },
          tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${Math.abs(ctx.parsed.y).toLocaleString()}` } },
        },
        scales: {
          x: { stacked: true, ticks: { maxTicksLimit: 8, maxRotation: 0 } },
          size: { position: "left", beginAtZero: true, title: { display: true, text: "members" } },
          moves: { position: "right", stacked: true, grid: { drawOnChartArea: false },
                   title: { display: true, text: "entered (+) / left (−)" },
                   ticks: { callback: (value) => Math.abs(value).toLocaleString() } },
        },
      },
    });
  });
}
document.addEventListener("DOMContentLoaded", () => drawCharts(document));
document.addEventListener("htmx:afterSettle", (event) => drawCharts(event.detail.elt.parentElement || document));
