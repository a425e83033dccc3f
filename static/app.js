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
// Controls that change the structure (field, operator, buttons) post to the builder themselves.
document.addEventListener("input", (event) => {
  const form = event.target.closest("form[data-builder]");
  if (!form || event.target.closest("[data-no-preview]") || !event.target.name) return;
  clearTimeout(form.previewTimer);
  form.previewTimer = setTimeout(() => htmx.trigger("#preview", "refresh-preview"), 400);
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
            backgroundColor: "rgba(59,91,219,.12)", fill: true, tension: 0.25, pointRadius: 2 },
          { type: "bar", label: "Entered", data: data.entered, yAxisID: "moves", backgroundColor: "#2b8a3e" },
          { type: "bar", label: "Left", data: data.exited, yAxisID: "moves", backgroundColor: "#c92a2a" },
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
          x: { ticks: { maxTicksLimit: 8, maxRotation: 0 } },
          size: { position: "left", beginAtZero: true, title: { display: true, text: "members" } },
          moves: { position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "entered / left" },
                   ticks: { callback: (value) => Math.abs(value).toLocaleString() } },
        },
      },
    });
  });
}
document.addEventListener("DOMContentLoaded", () => drawCharts(document));
document.addEventListener("htmx:afterSettle", (event) => drawCharts(event.detail.elt.parentElement || document));
