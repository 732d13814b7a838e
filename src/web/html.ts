/**
 * Plain HTML templates: `html` tagged templates escape every interpolated value
 * unless it is already {@link Html} (a fragment built the same way).
 * @module
 */

/** A trusted fragment of HTML. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

type Value = Html | string | number | boolean | null | undefined | Value[];

function render(v: Value): string {
  if (v === null || v === undefined || v === false) return "";
  if (Array.isArray(v)) return v.map(render).join("");
  if (v instanceof Html) return v.text;
  return escapeHtml(String(v));
}

/** `html\`<td>${value}</td>\``: values escaped, fragments and arrays of fragments kept. */
export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0] ?? "";
  values.forEach((v, i) => out += render(v) + (strings[i + 1] ?? ""));
  return new Html(out);
}

/** The page frame: title, navigation, flash message and body. */
export function layout(options: { title: string; body: Html; user?: string; csrf?: string; flash?: string }): Html {
  const nav = options.user
    ? html`<nav><a href="/console">Summary</a> <a href="/console/messages">Messages</a>
<form method="post" action="/console/logout" class="inline"><input type="hidden" name="csrf" value="${options.csrf}">
<button>Log out ${options.user}</button></form></nav>`
    : "";
  return html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <title>${options.title} — Empath</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="stylesheet" href="/console/app.css">
        <script src="/console/app.js" defer></script>
      </head>
      <body><header><h1>Empath</h1>${nav}</header>
    ${options.flash ? html`<p class="flash" role="status">${options.flash}</p>` : ""}
    <main>${options.body}</main></body>
    </html>
  `;
}
