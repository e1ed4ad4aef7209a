/**
 * The dashboard page served by `heed ui`: one HTML file with its script inline (no network, no build step).
 * It lists the runs (/api/runs), draws the selected runs overlaid (/api/view: SVG from heed report's charts)
 * and redraws when the server says a run's files changed (server-sent events on /api/events; a 10 s poll
 * covers a dropped connection).
 */
export function dashboardHtml(title: string, links: Array<{ href: string; label: string }> = []): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>heed ui · ${esc(title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;color:#111;background:#fafafa}
header{background:#111827;color:#fff;padding:10px 18px;display:flex;gap:18px;align-items:baseline}
header h1{font-size:18px;margin:0}header a{color:#93c5fd}header .root{color:#9ca3af;font-size:13px}
main{display:grid;grid-template-columns:minmax(520px,1fr) 1.5fr;gap:16px;padding:16px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px}
h2{font-size:15px;margin:4px 0 8px}
table{border-collapse:collapse;font-size:13px;width:100%}td,th{border-bottom:1px solid #eee;padding:4px 6px;text-align:left}th{background:#f3f4f6}
tr.sel{background:#eff6ff}
.st{font-size:12px;padding:1px 7px;border-radius:9px;white-space:nowrap}
.st.running{background:#dbeafe;color:#1d4ed8}.st.finished{background:#dcfce7;color:#15803d}
.st.stopped-early{background:#fee2e2;color:#b91c1c}.st.interrupted,.st.not-running{background:#f3f4f6;color:#4b5563}
.ck{font-size:12px;color:#374151}.ck b{color:#15803d}.note{color:#6b7280;font-size:12px}
#charts svg{max-width:100%;height:auto;display:block;margin-bottom:10px}
#live{font-size:12px;color:#9ca3af}#live.on{color:#22c55e}
</style></head><body>
<header><h1>heed ui</h1><span class="root">${esc(title)}</span>${links.map((l) => `<a href="${esc(l.href)}">${esc(l.label)}</a>`).join('')}<span id="live">○ connecting</span></header>
<main>
<section><h2>Runs</h2><table id="runs"><thead><tr><th></th><th>run</th><th>status</th><th>step</th><th>loss</th><th>held-out</th><th>IFS</th><th>checkpoints</th></tr></thead><tbody></tbody></table>
<p class="note">Tick runs to overlay them. Checkpoints are Hugging Face folders (step-N/); <b>bold</b> = best. A run is "running" while it has no summary.json and wrote within 2 min.</p></section>
<section><h2>Curves <span id="sel" class="note"></span></h2><div id="charts"></div>
<h2>IFS</h2><table id="ifs"><thead><tr><th>run</th><th>step</th><th>IFS</th><th>partial</th><th>full</th><th>ObjecQA</th><th>prompts</th></tr></thead><tbody></tbody></table>
<h2>Marks</h2><table id="marks"><thead><tr><th>run</th><th>step</th><th>mark</th></tr></thead><tbody></tbody></table></section>
</main>
<script>
const chosen = new Set();
let touched = false;
const f3 = (x) => (typeof x === 'number' ? x.toFixed(3) : '');
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
async function getJson(u) { const r = await fetch(u); if (!r.ok) throw new Error(u + ': ' + r.status); return r.json(); }
let busy = false, again = false;
async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    const runs = await getJson('/api/runs');
    if (!touched) { chosen.clear(); for (const r of runs.slice(0, 8)) chosen.add(r.name); }
    for (const n of [...chosen]) if (!runs.some((r) => r.name === n)) chosen.delete(n);
    document.querySelector('#runs tbody').innerHTML = runs.map((r) =>
      '<tr data-run="' + esc(r.name) + '" class="' + (chosen.has(r.name) ? 'sel' : '') + '"><td><input type="checkbox" ' + (chosen.has(r.name) ? 'checked' : '') + '></td>' +
      '<td>' + esc(r.name) + '</td><td><span class="st ' + r.status.replace(' ', '-') + '" title="' + esc(r.statusNote) + '">' + esc(r.status) + '</span></td>' +
      '<td class="steps">' + r.steps + '</td><td>' + f3(r.lastLoss) + '</td><td>' + f3(r.lastEvalLoss) + '</td><td>' + f3(r.lastIfs) + '</td>' +
      '<td class="ck">' + r.checkpoints.map((c) => (c.best ? '<b>step-' + c.step + '</b>' : 'step-' + c.step)).join(' ') + '</td></tr>').join('') ||
      '<tr><td colspan="8" class="note">no runs yet: start one with heed train config.yaml (out: this folder)</td></tr>';
    const v = await getJson('/api/view?runs=' + encodeURIComponent([...chosen].join('\\n')));
    document.getElementById('sel').textContent = v.runs.length ? '(' + v.runs.join(', ') + ')' : '(no run selected)';
    document.getElementById('charts').innerHTML = v.charts.join('');
    document.querySelector('#ifs tbody').innerHTML = v.ifs.map((x) => '<tr><td>' + esc(x.run) + '</td><td>' + x.step + '</td><td>' + f3(x.ifs) + '</td><td>' + f3(x.ifs_partial) + '</td><td>' + f3(x.ifs_full) + '</td><td>' + f3(x.objecqa) + '</td><td>' + x.prompts + '</td></tr>').join('') || '<tr><td colspan="7" class="note">no IFS evaluations in these runs (early_stopping.ifs in the config)</td></tr>';
    document.querySelector('#marks tbody').innerHTML = v.marks.map((m) => '<tr><td>' + esc(m.run) + '</td><td>' + m.step + '</td><td>' + esc(m.label) + '</td></tr>').join('') || '<tr><td colspan="3" class="note">no stage, early-stop or best marks yet</td></tr>';
    document.body.dataset.refreshed = String(Date.now());
    if (live.textContent.startsWith('×')) { live.textContent = es.readyState === 1 ? '● live' : '○ reconnecting'; live.className = es.readyState === 1 ? 'on' : ''; }
  } catch (e) {
    document.getElementById('live').textContent = '× ' + e.message;
  } finally {
    busy = false;
    if (again) { again = false; refresh(); }
  }
}
document.querySelector('#runs').addEventListener('change', (e) => {
  const tr = e.target.closest('tr'); if (!tr) return;
  touched = true;
  if (e.target.checked) chosen.add(tr.dataset.run); else chosen.delete(tr.dataset.run);
  refresh();
});
const live = document.getElementById('live');
const es = new EventSource('/api/events');
es.onopen = () => { live.textContent = '● live'; live.className = 'on'; };
es.onerror = () => { live.textContent = '○ reconnecting'; live.className = ''; };
es.onmessage = () => refresh();
setInterval(refresh, 10000);
refresh();
</script>
</body></html>
`;
}
