// The live alert feed: rows arrive by Server-Sent Events; operators acknowledge and silence.
(() => {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const canAct = document.currentScript.dataset.canAct === "yes";
  const body = document.querySelector("#alerts tbody");
  const filters = {
    severity: document.getElementById("filter-severity"),
    rule: document.getElementById("filter-rule"),
    area: document.getElementById("filter-area"),
  };

  function visible(row) {
    const area = filters.area.value.trim();
    return (!filters.severity.value || row.dataset.severity === filters.severity.value)
      && (!filters.rule.value.trim() || row.dataset.rule.includes(filters.rule.value.trim()))
      && (!area || row.dataset.area.includes(area));
  }
  function applyFilters() { for (const row of body.rows) row.hidden = !visible(row); }
  Object.values(filters).forEach((el) => el.addEventListener("input", applyFilters));

  function beep(severity) {
    if (!document.getElementById("sound").checked || severity === "info") return;
    try {
      const audio = new AudioContext();
      const tone = audio.createOscillator();
      tone.frequency.value = severity === "critical" ? 880 : 520;
      tone.connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + (severity === "critical" ? 0.6 : 0.2));
    } catch (e) { /* no audio device: the colour still tells */ }
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }
  function titleCell(a) {
    const td = document.createElement("td"), link = document.createElement("a");
    link.href = `/alerts/${a.alert_id}`;
    link.textContent = a.title;
    td.append(link);
    return td;
  }
  function button(label, cls, data) {
    const b = document.createElement("button");
    b.textContent = label;
    b.className = cls;
    Object.assign(b.dataset, data);
    return b;
  }

  // One row per transition: two workers briefly sharing a partition in a rebalance can
  // both publish one (same event id); the history stores it once, and so does the feed.
  const shown = new Set();
  function addAlert(a) {
    if (shown.has(a.event_id)) return;
    shown.add(a.event_id);
    const row = document.createElement("tr");
    row.className = `alert-row sev-${a.severity} new`;
    Object.assign(row.dataset, { alertId: a.alert_id, severity: a.severity, rule: a.rule_id, area: a.source_id });
    const state = a.muted ? `${a.state} (muted)` : a.reminder ? "reminded" : a.state;
    row.append(cell(a.time.replace("T", " ").slice(0, 19)), cell(a.severity, "severity"),
      cell(state, `state ${a.state}`), cell(a.rule_id), cell(a.source_id), titleCell(a), cell("", "acked"));
    if (canAct) {
      const actions = cell("", "actions");
      actions.append(button("Acknowledge", "ack", { alertId: a.alert_id }),
        button("Comment", "comment", { alertId: a.alert_id }),
        button("Resolve", "resolve", { alertId: a.alert_id }),
        button("Silence", "silence", { rule: a.rule_id, key: a.source_id }));
      row.append(actions);
    }
    body.prepend(row);
    row.hidden = !visible(row);
    document.getElementById("empty").hidden = true;
    if (a.state === "fired" && !a.muted) beep(a.severity);
  }

  function markAcked(ack) {
    for (const row of body.querySelectorAll(`tr[data-alert-id="${ack.alert_id}"]`)) {
      row.querySelector(".acked").textContent = `${ack.by} (${ack.via})`;
      const b = row.querySelector("button.ack");
      if (b) b.disabled = true;
    }
  }

  async function post(url, payload) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(payload),
    });
    if (!response.ok) alert(`${response.status}: ${(await response.json()).detail}`);
    return response.ok;
  }

  body.addEventListener("click", async (event) => {
    const b = event.target.closest("button");
    if (!b) return;
    if (b.classList.contains("ack")) {
      b.disabled = true;
      if (!(await post(`/api/alerts/${b.dataset.alertId}/ack`, { note: "" }))) b.disabled = false;
    } else if (b.classList.contains("resolve")) {
      const reason = prompt("Resolve by hand: why?");
      if (reason) await post(`/api/alerts/${b.dataset.alertId}/resolve`, { text: reason });
    } else if (b.classList.contains("comment")) {
      const text = prompt("Comment");
      if (text) await post(`/api/alerts/${b.dataset.alertId}/comment`, { text });
    } else if (b.classList.contains("silence")) {
      const duration = prompt(`Silence ${b.dataset.rule} at ${b.dataset.key} for how long? (30m, 2h, 1d)`, "1h");
      if (!duration) return;
      const reason = prompt("Why?");
      if (reason) await post(`/api/rules/${encodeURIComponent(b.dataset.rule)}/silence`,
        { duration, reason, group_key: b.dataset.key });
    }
  });

  const live = document.getElementById("live");
  const source = new EventSource("/events/alerts");
  source.onopen = () => live.classList.add("on");
  source.onerror = () => live.classList.remove("on");
  source.addEventListener("alert", (e) => addAlert(JSON.parse(e.data)));
  source.addEventListener("ack", (e) => markAcked(JSON.parse(e.data)));
  source.addEventListener("comment", (e) => {
    const note = JSON.parse(e.data);
    for (const row of body.querySelectorAll(`tr[data-alert-id="${note.alert_id}"]`)) {
      row.querySelector(".acked").title = `${note.by}: ${note.text}`;
      const last = row.querySelector(".note") || row.cells[5].appendChild(document.createElement("div"));
      last.className = "note";
      last.textContent = `${note.by}: ${note.text}`;
    }
  });
})();
