// History: a table of events with keyset paging and CSV export; a time-series chart in SVG
// (gaps stay gaps: a null bucket breaks the line).
(() => {
  "use strict";
  const form = document.getElementById("query"), table = document.getElementById("rows");
  let cursor = null;

  function params(extra = {}) {
    const data = new FormData(form);
    const query = new URLSearchParams({ start: data.get("start"), end: data.get("end"), limit: "50", ...extra });
    if (data.get("source")) query.append("source", data.get("source"));
    return { kind: data.get("kind"), query };
  }
  function show(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }
  async function search(append) {
    const { kind, query } = params(append && cursor ? { after: cursor } : {});
    const response = await fetch(`/api/events/${kind}?${query}`, { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) { alert(JSON.stringify(body.detail)); return; }
    const head = table.tHead, tbody = table.tBodies[0];
    if (!append) {
      tbody.innerHTML = "";
      head.innerHTML = "";
      if (body.rows.length) {
        const row = head.insertRow();
        for (const key of Object.keys(body.rows[0])) row.insertCell().textContent = key;
      }
    }
    for (const r of body.rows) {
      const row = tbody.insertRow();
      row.className = "history-row";
      for (const value of Object.values(r)) row.insertCell().textContent = show(value);
    }
    cursor = body.next_cursor;
    document.getElementById("more").hidden = !cursor;
    document.getElementById("csv").href = `/api/export/${kind}.csv?${params().query}`;
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); search(false); });
  document.getElementById("more").addEventListener("click", () => search(true));

  const colours = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f"];
  const seriesForm = document.getElementById("series");
  seriesForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(seriesForm), range = new FormData(form);
    const query = new URLSearchParams({ start: range.get("start"), end: range.get("end"),
      bucket: data.get("bucket"), field: data.get("field") });
    if (range.get("source")) query.append("source", range.get("source"));
    const response = await fetch(`/api/aggregates/${data.get("name")}?${query}`, { credentials: "same-origin" });
    const rows = await response.json();
    if (!response.ok) { alert(JSON.stringify(rows.detail)); return; }
    draw(rows);
  });

  function draw(rows) {
    const svg = document.getElementById("chart"), legend = document.getElementById("legend");
    const width = svg.clientWidth || 800, height = 260, pad = 36;
    const keyOf = (r) => r.source_id ? (r.label ? `${r.source_id} ${r.label}` : r.source_id) : r.rule_id;
    const valueKey = ["mean", "frames", "fired", "mean_seconds"].find((k) => rows.length && k in rows[0]);
    const series = new Map();
    for (const r of rows) {
      if (!series.has(keyOf(r))) series.set(keyOf(r), []);
      series.get(keyOf(r)).push([Date.parse(r.bucket), r[valueKey]]);
    }
    const times = rows.map((r) => Date.parse(r.bucket));
    const values = rows.map((r) => r[valueKey]).filter((v) => v !== null);
    const [t0, t1] = [Math.min(...times), Math.max(...times)];
    const top = Math.max(1, ...values);
    const x = (t) => pad + ((t - t0) / Math.max(1, t1 - t0)) * (width - 2 * pad);
    const y = (v) => height - pad - (v / top) * (height - 2 * pad);
    let body = `<line x1="${pad}" y1="${height - pad}" x2="${width - pad}" y2="${height - pad}" stroke="#90a4ae"/>`;
    body += `<text x="4" y="${pad}" font-size="11">${top.toFixed(1)}</text><text x="4" y="${height - pad}" font-size="11">0</text>`;
    legend.innerHTML = "";
    let i = 0;
    for (const [key, points] of series) {
      const colour = colours[i++ % colours.length];
      let path = "", pen = false, dots = "";
      for (const [t, v] of points) {
        if (v === null) { pen = false; continue; }  // a gap stays a gap
        path += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
        dots += `<circle class="point" cx="${x(t).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${colour}"><title>${new Date(t).toISOString()}: ${v}</title></circle>`;
        pen = true;
      }
      body += `<path class="series" d="${path}" fill="none" stroke="${colour}" stroke-width="2"/>${dots}`;
      const item = document.createElement("li");
      item.textContent = key;
      item.style.color = colour;
      legend.append(item);
    }
    svg.innerHTML = body;
  }
})();
