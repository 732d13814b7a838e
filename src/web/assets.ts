/**
 * The console's only script and stylesheet, served from /console (the CSP allows
 * no inline code): live counters over SSE (reopened if the browser gives up on
 * it), confirmation of destructive actions, and the "check all" box.
 * @module
 */

/** /console/app.js */
export const APP_JS = `"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("button[data-confirm]")) {
    if (!b.dataset.confirm) continue;
    b.addEventListener("click", (e) => { if (!confirm(b.dataset.confirm)) e.preventDefault(); });
  }
  const all = document.querySelector("[data-check-all]");
  if (all) all.addEventListener("change", () => {
    for (const c of document.querySelectorAll("input[name=ids]")) c.checked = all.checked;
  });
  const live = document.querySelector("[data-live]");
  const listen = () => {
    const source = new EventSource(live.dataset.live);
    source.addEventListener("counters", (e) => {
      const data = JSON.parse(e.data);
      for (const el of document.querySelectorAll("[data-counter]")) {
        const v = data[el.dataset.counter];
        if (v !== undefined) el.textContent = String(v);
      }
      live.dataset.updated = String(Date.now());
    });
    // The browser gives up on a failed answer (e.g. the daemon restarting): start over.
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) setTimeout(listen, 5000);
    });
  };
  if (live && window.EventSource) listen();
});
`;

/** /console/app.css */
export const APP_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f5f6f8; }
header { display: flex; align-items: center; gap: 2em; background: #1d2330; color: #fff; padding: .5em 1.5em; }
header h1 { font-size: 1.2em; margin: 0; }
header a { color: #cfe0ff; margin-right: 1em; }
nav { display: flex; align-items: center; gap: .5em; flex: 1; }
nav form { margin-left: auto; }
main { padding: 1em 1.5em; }
table { border-collapse: collapse; width: 100%; background: #fff; margin-bottom: 1em; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid #e3e6eb; vertical-align: top; }
th { background: #eef0f4; font-weight: 600; }
td.reply { font-family: ui-monospace, monospace; font-size: .85em; color: #8a2a0a; max-width: 40em; }
.counters { display: flex; gap: 1em; flex-wrap: wrap; }
.counter { background: #fff; border: 1px solid #e3e6eb; border-radius: 6px; padding: .5em 1em; min-width: 6em; color: #556; }
.counter span { display: block; font-size: 1.6em; font-weight: 600; color: #1d2330; }
form.inline { display: inline; }
button { border: 1px solid #9aa3b5; background: #fff; border-radius: 4px; padding: .2em .7em; cursor: pointer; }
button.delete, button.bounce { border-color: #c0392b; color: #c0392b; }
.flash { background: #e6f4ea; border: 1px solid #9bd0a8; padding: .5em 1em; margin: 1em 1.5em 0; }
.error { color: #c0392b; }
.selectors label, .login label { margin-right: 1em; display: inline-block; }
.login { background: #fff; padding: 1em; max-width: 30em; }
.login label { display: block; margin-bottom: .5em; }
pre.headers { background: #fff; border: 1px solid #e3e6eb; padding: 1em; overflow: auto; }
`;
