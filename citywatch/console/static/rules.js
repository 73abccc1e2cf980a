// The rule editor: highlight, check as you type (errors at their line), diff, test, publish.
(() => {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const canEdit = document.currentScript.dataset.canEdit === "yes";
  const $ = (id) => document.getElementById(id);
  const yaml = $("yaml"), gutter = $("gutter"), highlight = $("highlight"), nameInput = $("name");
  let errors = [];
  let touched = false;  // once the engineer types, a late file list must not replace their draft
  let opened = { name: null, sha256: null };  // the live version the draft started from

  function escapeHtml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  function highlightLine(line) {
    const comment = line.indexOf("#") >= 0 && !/["'][^"']*#/.test(line) ? line.indexOf("#") : -1;
    const code = comment >= 0 ? line.slice(0, comment) : line;
    // strings first: the key's <span class="k"> must not be taken for a string afterwards
    let html = escapeHtml(code)
      .replace(/("[^"]*"|'[^']*')/g, '<span class="s">$1</span>')
      .replace(/^(\s*-?\s*)([A-Za-z_][\w.-]*)(:)/, '$1<span class="k">$2</span>$3')
      .replace(/(:\s*)(-?\d+(?:\.\d+)?(?:ms|s|m|h|d)?)(\s*$)/, '$1<span class="n">$2</span>$3');
    if (comment >= 0) html += `<span class="c">${escapeHtml(line.slice(comment))}</span>`;
    return html;
  }
  function render() {
    const lines = yaml.value.split("\n");
    const bad = new Set(errors.map((e) => e.line));
    gutter.innerHTML = lines.map((_, i) => `<span class="${bad.has(i + 1) ? "bad" : ""}" data-line="${i + 1}">${i + 1}</span>`).join("\n");
    highlight.innerHTML = lines.map((l, i) => `<span class="${bad.has(i + 1) ? "bad" : ""}">${highlightLine(l)}</span>`).join("\n") + "\n";
    highlight.scrollTop = yaml.scrollTop; gutter.scrollTop = yaml.scrollTop;
  }
  yaml.addEventListener("scroll", () => { highlight.scrollTop = yaml.scrollTop; gutter.scrollTop = yaml.scrollTop; });

  async function call(url, payload, method = "POST") {
    const response = await fetch(url, {
      method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: payload === undefined ? undefined : JSON.stringify(payload),
    });
    const body = await response.json();
    return { ok: response.ok, status: response.status, body };
  }
  function draft() { return { name: nameInput.value.trim() || "draft.yaml", content: yaml.value }; }

  let timer = null;
  async function check() {
    const { ok, body } = await call("/api/rules/check", draft());
    if (!ok) { $("status").textContent = `cannot check: ${JSON.stringify(body.detail)}`; return; }
    errors = body.errors;
    const list = $("errors");
    list.innerHTML = "";
    for (const e of errors) {
      const item = document.createElement("li");
      item.textContent = `line ${e.line}, column ${e.column}: ${e.message}`;
      item.dataset.line = e.line;
      list.append(item);
    }
    $("status").textContent = errors.length ? `${errors.length} error(s)` : `valid: ${body.rules.join(", ") || "no rules"}`;
    $("status").className = errors.length ? "error" : "ok";
    if ($("publish")) $("publish").disabled = errors.length > 0 || !yaml.value.trim();
    render();
  }
  yaml.addEventListener("input", () => { touched = true; render(); clearTimeout(timer); timer = setTimeout(check, 300); });
  nameInput.addEventListener("input", () => {
    touched = true;
    $("versions").querySelector("tbody").innerHTML = "";  // another file: its own versions, once published
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  });

  $("diff").addEventListener("click", async () => {
    const { body } = await call("/api/rules/diff", draft());
    $("diff-out").hidden = false;
    $("diff-out").textContent = body.diff || "(no change)";
  });
  if (canEdit) {
    $("test").addEventListener("click", async () => {
      const { ok, body } = await call("/api/rules/test", { ...draft(), hours: Number($("hours").value) });
      const table = $("test-out"), tbody = table.querySelector("tbody");
      table.hidden = false;
      tbody.innerHTML = "";
      if (!ok) { $("status").textContent = "fix the errors first"; return; }
      for (const a of body.alerts) {
        const row = tbody.insertRow();
        for (const v of [a.time.replace("T", " ").slice(0, 19), a.state, a.rule_id, a.group_key, a.sms]) row.insertCell().textContent = v;
      }
      $("status").textContent = `${body.alerts.length} alert(s) in the last ${$("hours").value} h`;
    });
    $("publish").addEventListener("click", async () => {
      const d = draft();
      const replaces = d.name === opened.name ? opened.sha256 : null;  // another name: a new file
      const { ok, status, body } = await call("/api/rules/publish", { ...d, comment: $("comment").value, replaces });
      const why = status === 409 ? body.detail.message : JSON.stringify(body.detail);
      $("status").textContent = ok ? `published ${body.name}: ${body.rules.join(", ")}` : `refused: ${why}`;
      $("status").className = ok ? "ok" : "error";
      if (ok) { opened = { name: body.name, sha256: body.sha256 }; setTimeout(loadFiles, 1500); }
    });
    $("new-file").addEventListener("click", () => { touched = true; opened = { name: null, sha256: null }; nameInput.value = ""; yaml.value = ""; errors = []; render(); });
  }

  async function loadVersions(name) {
    const response = await fetch(`/api/rules/files/${encodeURIComponent(name)}/versions`, { credentials: "same-origin" });
    const rows = response.ok ? await response.json() : [];
    const tbody = $("versions").querySelector("tbody");
    tbody.innerHTML = "";
    for (const v of rows) {
      const row = tbody.insertRow();
      for (const value of [v.version, v.published_at.replace("T", " ").slice(0, 19), v.author, v.comment, v.accepted ? "yes" : "refused"]) {
        row.insertCell().textContent = value;
      }
      const cell = row.insertCell();
      if (canEdit && v.accepted && !v.deleted) {
        const b = document.createElement("button");
        b.textContent = "Roll back to this";
        b.addEventListener("click", async () => {
          const { ok } = await call("/api/rules/rollback", { name, version: v.version });
          $("status").textContent = ok ? `rolled back ${name} to version ${v.version}` : "roll back failed";
          if (ok) setTimeout(loadFiles, 1500);
        });
        cell.append(b);
      }
    }
  }
  function open(file) {
    opened = { name: file.name, sha256: file.sha256 };
    nameInput.value = file.name;
    yaml.value = file.content;
    errors = file.errors;
    render();
    check();
    loadVersions(file.name);
  }
  async function loadFiles() {
    const response = await fetch("/api/rules/files", { credentials: "same-origin" });
    const files = await response.json();
    const list = $("files");
    list.innerHTML = "";
    for (const file of files) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = "#";
      link.textContent = file.name;
      link.addEventListener("click", (e) => { e.preventDefault(); open(file); });
      item.append(link, document.createTextNode(` ${file.rules.map((r) => r.id).join(", ")}`));
      list.append(item);
    }
    if (files.length && !touched && !yaml.value && !nameInput.value) open(files[0]);
  }
  render();
  loadFiles();
})();
