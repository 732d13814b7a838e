/**
 * The console's pages as template functions over control API results: login,
 * queue summary by destination, the message list with the CLI's selectors, and
 * one message's detail.
 * @module
 */
import type { DestinationRow, MessageRow, QueueStatsResult, QueueViewResult } from "../control/mod.ts";
import { type Html, html } from "./html.ts";

const ago = (ms: number) => {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60
    ? `${s}s`
    : s < 3600
    ? `${Math.floor(s / 60)}m`
    : s < 86400
    ? `${Math.floor(s / 3600)}h`
    : `${Math.floor(s / 86400)}d`;
};
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

/** The CSRF field of every form. */
const csrfField = (csrf: string) => html`<input type="hidden" name="csrf" value="${csrf}">`;

/** A one-button action form. */
function action(csrf: string, name: string, label: string, fields: Record<string, string>, back: string): Html {
  return html`<form method="post" action="/console/action" class="inline">${csrfField(csrf)}
<input type="hidden" name="action" value="${name}"><input type="hidden" name="back" value="${back}">
${Object.entries(fields).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}
<button class="${name}" data-confirm="${
    name === "delete" || name === "bounce" ? `${label}?` : ""
  }">${label}</button></form>`;
}

/** The login form. */
export function loginPage(options: { users: boolean; token: boolean; error?: string }): Html {
  return html`<h2>Log in</h2>${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ""}
<form method="post" action="/console/login" class="login">
${options.users ? html`<label>User <input name="user" autocomplete="username"></label>` : ""}
<label>${
    options.users ? "Password" : "Token"
  } <input name="password" type="password" autocomplete="current-password" required></label>
${options.users && options.token ? html`<p class="hint">Leave the user empty to log in with the token.</p>` : ""}
<button type="submit">Log in</button></form>`;
}

/** Live counters (updated over SSE by app.js). */
export function countersBlock(s: QueueStatsResult): Html {
  const cell = (k: string, v: number) => html`<div class="counter"><span data-counter="${k}">${v}</span>${k}</div>`;
  return html`<section class="counters" data-live="/console/events">
${cell("total", s.total)}${Object.entries(s.counts).map(([k, v]) => cell(k, v))}
<div class="counter"><span data-counter="oldest">${s.oldestAgeSeconds}</span>oldest (s)</div></section>`;
}

/** The summary: counters and one row per destination with last error and trend. */
export function summaryPage(
  stats: QueueStatsResult,
  rows: DestinationRow[],
  trend: (domain: string, now: number) => number | undefined,
  csrf: string,
): Html {
  const now = Date.now();
  const arrow = (d: number | undefined) => d === undefined ? "–" : d > 0 ? `▲ +${d}` : d < 0 ? `▼ ${d}` : "▶ 0";
  return html`
    <h2>Queue</h2>${countersBlock(stats)}
    <h2>Destinations</h2>
    <table class="destinations">
      <thead>
        <tr>
          <th>Destination</th>
          <th>Messages</th>
          <th>Trend (15 min)</th>
          <th>Oldest</th>
          <th>State</th>
          <th>Last error</th>
          <th>Actions</th>
        </tr>
      </thead>
      <tbody>
    ${rows.length
      ? rows.map((r) =>
        html`
          <tr>
            <td><a href="/console/messages?domain=${encodeURIComponent(r.domain)}">${r.domain}</a></td>
            <td>${r.messages}</td>
            <td>${arrow(trend(r.domain, now))}</td>
            <td>${r.oldestAgeSeconds}s</td>
            <td>${r.suspendedUntil
              ? `suspended until ${iso(r.suspendedUntil)}`
              : r.circuit === "closed"
              ? "ok"
              : `circuit ${r.circuit}`}</td>
            <td class="reply">${r.lastError ?? ""}</td>
            <td>${action(csrf, "retry", "Retry", { domain: r.domain }, "/console")}
          ${r.suspendedUntil
            ? action(csrf, "resume", "Resume", { domain: r.domain }, "/console")
            : action(csrf, "suspend", "Suspend 1h", { domain: r.domain, for: "1h" }, "/console")}</td>
          </tr>
        `
      )
      : html`
        <tr>
          <td colspan="7">The queue is empty.</td>
        </tr>
      `}</tbody>
    </table>
  `;
}

/** The selectors the list takes (the CLI's `queue list` and bulk options). */
export interface ListQuery {
  status?: string;
  domain?: string;
  from?: string;
  to?: string;
  limit: number;
}

/** The message list with its selector form and bulk actions on checked messages. */
export function listPage(q: ListQuery, messages: MessageRow[], truncated: boolean, csrf: string, back: string): Html {
  const input = (name: keyof ListQuery, label: string, placeholder: string) =>
    html`<label>${label} <input name="${name}" value="${String(q[name] ?? "")}" placeholder="${placeholder}"></label>`;
  const statuses = ["", "queued", "deferred", "frozen", "delivering"];
  return html`<h2>Messages</h2>
<form method="get" action="/console/messages" class="selectors">
<label>Status <select name="status">${
    statuses.map((s) => html`<option value="${s}" ${q.status === s ? "selected" : ""}>${s || "any"}</option>`)
  }</select></label>
${input("domain", "Domain", "example.com")}${input("from", "From", "*@example.com")}${
    input("to", "To", "*@example.org")
  }
<button type="submit">Search</button></form>
<form method="post" action="/console/action" id="bulk">${
    csrfField(csrf)
  }<input type="hidden" name="back" value="${back}">
<table class="messages"><thead><tr><th><input type="checkbox" data-check-all aria-label="all"></th><th>ID</th><th>Status</th>
<th>Age</th><th>From</th><th>Recipients</th><th>Last reply</th></tr></thead><tbody>
${
    messages.length
      ? messages.map((m) =>
        html`
          <tr>
            <td><input type="checkbox" name="ids" value="${m.id}" aria-label="select ${m.id}"></td>
            <td><a href="/console/messages/${m.id}">${m.id}</a></td>
            <td>${m.status}</td>
            <td>${ago(m.receivedAt)}</td>
            <td>${m.sender || "<>"}</td>
            <td>${m.recipientStates.map((r) => r.address).join(", ")}</td>
            <td class="reply">${m.lastReply ?? ""}</td>
          </tr>
        `
      )
      : html`
        <tr>
          <td colspan="7">No message matches.</td>
        </tr>
      `
  }</tbody></table>
${truncated ? html`<p>More messages match; narrow the search.</p>` : ""}
<p class="bulk">With the checked messages:
${
    ["retry", "hold", "release", "bounce", "delete"].map((a) =>
      html`<button name="action" value="${a}" class="${a}" data-confirm="${
        a === "delete" || a === "bounce" ? `${a} the checked messages?` : ""
      }">${a[0]!.toUpperCase() + a.slice(1)}</button>`
    )
  }</p></form>`;
}

/** One message: envelope, recipients, attempts, raw headers and actions. */
export function detailPage(m: QueueViewResult, rawHeaders: string, csrf: string): Html {
  const back = `/console/messages/${m.id}`;
  const waiting = m.status === "queued" || m.status === "deferred";
  return html`
    <h2>Message ${m.id}</h2>
    <dl class="envelope">
      <dt>Status</dt>
      <dd>${m.status}${m.inFlight ? " (delivering now)" : ""}</dd>
      <dt>From</dt>
      <dd>${m.sender || "<>"}</dd>
      <dt>Received</dt>
      <dd>${iso(m.receivedAt)} from ${m.client.address}${m.client.helo ? ` (${m.client.helo})` : ""}</dd>
      <dt>Size</dt>
      <dd>${m.size} bytes</dd>
      <dt>Next attempt</dt>
      <dd>${waiting ? iso(m.nextAttemptAt) : "–"}</dd>
    </dl>
    <p class="actions">${action(csrf, "retry", "Retry", { id: m.id }, back)}
    ${m.status === "frozen"
      ? action(csrf, "release", "Release", { id: m.id }, back)
      : action(csrf, "hold", "Hold", { id: m.id }, back)}
    ${action(csrf, "bounce", "Bounce", { id: m.id }, "/console/messages")}
    ${action(csrf, "delete", "Delete", { id: m.id }, "/console/messages")}</p>
    <h3>Recipients</h3>
    <table>
      <thead>
        <tr>
          <th>Address</th>
          <th>Status</th>
          <th>Attempts</th>
          <th>Last reply</th>
        </tr>
      </thead>
      <tbody>
    ${m.recipients.map((r) =>
      html`
        <tr>
          <td>${r.address}</td>
          <td>${r.status}</td>
          <td>${r.attempts}</td>
          <td class="reply">${r.lastReply ?? ""}</td>
        </tr>
      `
    )}</tbody>
    </table>
    <h3>Attempts (${m.attempts.length})</h3>
    <table>
      <thead>
        <tr>
          <th>Time</th>
          <th>Server</th>
          <th>TLS</th>
          <th>Duration</th>
          <th>Result</th>
        </tr>
      </thead>
      <tbody>${m.attempts.map((a) =>
        html`
          <tr>
            <td>${iso(a.at)}</td>
            <td>${a.server ?? "no server"}</td>
            <td>${a.tls ? "yes" : "no"}</td>
            <td>${a.durationMs} ms</td>
            <td class="reply">${a.result.map((x) => `${x.address}: ${x.outcome}: ${x.reply}`).join("; ")}</td>
          </tr>
        `
      )}</tbody>
    </table>
    <h3>Headers</h3>
    <pre class="headers">${rawHeaders}</pre>
  `;
}
