/**
 * The operator console on the HTTP listener (`[web]`, off by default): routes
 * under /console, each calling the typed control API in-process, so every action
 * is the same code as `empathctl`'s (and audited the same way, naming the web user).
 *
 * Guards: a login (token or users file), a per-session CSRF token plus a
 * same-origin check on every POST, strict security headers, and a Host check
 * against DNS rebinding. {@link checkExposure} refuses a non-loopback listener
 * unless `web.allow_remote` is set.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfig } from "../config/load.ts";
 * import type { LocalCaller } from "../control/local_client.ts";
 * import { createConsole } from "./console.ts"; // @ts-ignore deno#26900
 *
 * const cfg = parseConfig('[web]\nenabled = true\ntoken_file = "/etc/empath/web.token"\n', "config.toml");
 * const api: LocalCaller = { call: () => Promise.reject(new Error("not used here")) }; // createLocalCaller(ctx) in the daemon
 * const app = createConsole({ api, config: cfg.web, port: 9425, credentials: { token: "s3cret" } });
 * assert.equal(await app(new Request("http://127.0.0.1:9425/metrics")), undefined); // not a console path
 * const res = await app(new Request("http://127.0.0.1:9425/console", { headers: { host: "127.0.0.1:9425" } }));
 * assert.equal(res?.status, 303); // to the login page
 * ```
 * @module
 */
import type { ArgsInput, CommandName, LocalCaller } from "../control/mod.ts";
import { ControlError } from "../control/mod.ts";
import { APP_CSS, APP_JS } from "./assets.ts";
import type { WebConfig } from "../config/web.ts";
import { html, layout } from "./html.ts";
import { detailPage, listPage, type ListQuery, loginPage, summaryPage } from "./pages.ts";
import { hostAllowed, isLoopback, sameOrigin, secretsMatch, secured } from "./security.ts";
import { createSessions, type Credentials, type WebSession } from "./sessions.ts";
import { createTrendSampler } from "./trend.ts";

/** A console configuration problem found at start. */
export class WebConfigError extends Error {
  constructor(message: string, readonly code: "WEB_EXPOSED" | "WEB_NO_LOGIN") {
    super(message);
    this.name = "WebConfigError";
  }
}

/** Refuses a console that would be reachable beyond loopback without `allow_remote`, or has no login. */
export function checkExposure(httpHost: string, web: WebConfig): void {
  if (!web.token_file && !web.users_file) {
    throw new WebConfigError(
      "web.enabled needs web.token_file or web.users_file (the console always asks for a login)",
      "WEB_NO_LOGIN",
    );
  }
  if (!isLoopback(httpHost) && !web.allow_remote) {
    throw new WebConfigError(
      `web.enabled with http.address on ${httpHost}: the console would listen beyond loopback; set web.allow_remote = true to allow it`,
      "WEB_EXPOSED",
    );
  }
}

/** What the console needs. */
export interface ConsoleOptions {
  api: LocalCaller;
  config: WebConfig;
  /** The HTTP listener's port (for the Host check). */
  port: number;
  credentials: Credentials;
  /** Live counters interval (default 2 s). */
  sseIntervalMs?: number;
  /** Aborting it ends every live-counter stream (the server is shutting down). */
  signal?: AbortSignal;
}

const page = (body: string, status = 200, headers: Record<string, string> = {}) =>
  secured(new Response(body, { status, headers: { "content-type": "text/html; charset=utf-8", ...headers } }));
const redirect = (to: string, headers: Record<string, string> = {}) =>
  secured(new Response(null, { status: 303, headers: { location: to, ...headers } }));
const refuse = (status: number, text: string) =>
  secured(new Response(`${text}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8" } }));

const str = (f: FormData, k: string) => {
  const v = f.get(k);
  return typeof v === "string" && v !== "" ? v : undefined;
};

/** The control call of one console action. */
function actionCall(action: string, f: FormData): { name: CommandName; args: ArgsInput<CommandName> } | undefined {
  const ids = f.getAll("ids").filter((v): v is string => typeof v === "string");
  const id = str(f, "id");
  const domain = str(f, "domain");
  const sel = id ? { id } : ids.length ? { ids } : domain ? { domain } : undefined;
  if (!sel && action !== "suspend" && action !== "resume") return undefined;
  switch (action) {
    case "retry":
      return { name: "queue.retry", args: ids.length ? { ids } : sel! };
    case "hold":
      return { name: "queue.hold", args: sel! };
    case "release":
      return { name: "queue.release", args: sel! };
    case "bounce":
      return { name: "queue.bounce", args: { ...(ids.length ? { ids } : sel!), reason: str(f, "reason") } };
    case "delete":
      return { name: "queue.delete", args: ids.length || !id ? { ...sel!, dryRun: false } : { id } };
    case "suspend":
      return domain ? { name: "queue.suspend", args: { domain, for: str(f, "for") ?? "1h" } } : undefined;
    case "resume":
      return domain ? { name: "queue.resume", args: { domain } } : undefined;
  }
  return undefined;
}

/** Words for an action's answer. */
function done(action: string, result: unknown): string {
  const r = result as { matched?: number; changed?: number; retried?: number; bounced?: number; deleted?: string };
  if (r.matched !== undefined) return `${action}: ${r.changed} of ${r.matched} message(s)`;
  if (r.retried !== undefined) return `retry: ${r.retried} message(s)`;
  if (r.bounced !== undefined) return `bounce: ${r.bounced} message(s)`;
  if (r.deleted !== undefined) return `deleted ${r.deleted}`;
  return `${action}: done`;
}

/** Creates the console; the handler answers /console paths and returns undefined for others. */
export function createConsole(options: ConsoleOptions): (req: Request) => Promise<Response | undefined> {
  const { api, config } = options;
  const sessions = createSessions(options.credentials, config.session_ttl);
  const trend = createTrendSampler();
  const interval = options.sseIntervalMs ?? 2000;

  async function stats() {
    const s = await api.call("queue.stats", {});
    trend.sample(s.at, Object.fromEntries(s.domains.map((d) => [d.domain, d.messages])));
    return s;
  }

  function events(): Response {
    let timer: ReturnType<typeof setInterval> | undefined;
    const enc = new TextEncoder();
    let end = () => {};
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        end = () => {
          clearInterval(timer);
          options.signal?.removeEventListener("abort", end);
          try {
            controller.close();
          } catch { /* closed */ }
        };
        options.signal?.addEventListener("abort", end);
        if (options.signal?.aborted) return end();
        const push = async () => {
          try {
            const s = await stats();
            const data = { total: s.total, oldest: s.oldestAgeSeconds, ...s.counts, at: s.at };
            controller.enqueue(enc.encode(`event: counters\ndata: ${JSON.stringify(data)}\n\n`));
          } catch {
            end();
          }
        };
        // A dropped stream is reopened after one interval (the browser's default is 3 s).
        controller.enqueue(enc.encode(`retry: ${interval}\n\n`));
        void push();
        timer = setInterval(push, interval);
      },
      cancel() {
        end();
      },
    });
    return secured(new Response(body, { headers: { "content-type": "text/event-stream" } }));
  }

  async function get(url: URL, s: WebSession, flash?: string): Promise<Response> {
    const path = url.pathname;
    const frame = (title: string, body: ReturnType<typeof html>) =>
      page(layout({ title, body, user: s.user, csrf: s.csrf, flash }).text);
    if (path === "/console" || path === "/console/") {
      const [st, sum] = await Promise.all([stats(), api.call("queue.summary", {})]);
      return frame("Summary", summaryPage(st, sum.destinations, trend.delta, s.csrf));
    }
    if (path === "/console/messages") {
      const p = url.searchParams;
      const q: ListQuery = {
        status: p.get("status") || undefined,
        domain: p.get("domain") || undefined,
        from: p.get("from") || undefined,
        to: p.get("to") || undefined,
        limit: 200,
      };
      const r = await api.call("queue.list", q);
      return frame("Messages", listPage(q, r.messages, r.truncated, s.csrf, `${path}${url.search}`));
    }
    const m = /^\/console\/messages\/([0-9A-Z]{26})$/.exec(path);
    if (m?.[1]) {
      const [view, head] = await Promise.all([
        api.call("queue.view", { id: m[1] }),
        api.call("queue.cat", { id: m[1], part: "headers" }),
      ]);
      const raw = new TextDecoder().decode(Uint8Array.from(atob(head.base64), (c) => c.charCodeAt(0)));
      return frame(`Message ${view.id}`, detailPage(view, raw.trimEnd(), s.csrf));
    }
    if (path === "/console/events") return events();
    return refuse(404, "not found");
  }

  async function post(req: Request, url: URL, s: WebSession): Promise<Response> {
    const f = await req.formData();
    if (!(await secretsMatch(str(f, "csrf") ?? "", s.csrf))) {
      return refuse(403, "refused: missing or wrong CSRF token (reload the page and try again)");
    }
    if (url.pathname === "/console/logout") {
      sessions.logout(s.id);
      return redirect("/console/login", { "set-cookie": sessions.cookie(undefined) });
    }
    if (url.pathname !== "/console/action") return refuse(404, "not found");
    const back = str(f, "back") ?? "/console";
    const target = back.startsWith("/console") && !back.startsWith("//") ? back : "/console";
    const action = str(f, "action") ?? "";
    const call = actionCall(action, f);
    if (!call) return redirect(withFlash(target, `${action || "action"}: say which messages`));
    try {
      const result = await api.call(call.name, call.args, { web: s.user });
      return redirect(withFlash(target, done(action, result)));
    } catch (err) {
      return redirect(withFlash(target, `${action} failed: ${(err as Error).message}`));
    }
  }

  async function login(req: Request): Promise<Response> {
    const hasUsers = !!options.credentials.users;
    const hasToken = !!options.credentials.token;
    const form = (error?: string, status = 200) =>
      page(layout({ title: "Log in", body: loginPage({ users: hasUsers, token: hasToken, error }) }).text, status);
    if (req.method !== "POST") return form();
    const f = await req.formData();
    const s = await sessions.login(str(f, "user") ?? "", str(f, "password") ?? "");
    if (!s) return form("Wrong user, password or token.", 401);
    return redirect("/console", { "set-cookie": sessions.cookie(s) });
  }

  return async (req) => {
    const url = new URL(req.url);
    if (url.pathname !== "/console" && !url.pathname.startsWith("/console/")) return undefined;
    if (!hostAllowed(req.headers.get("host"), options.port, config.allowed_hosts)) {
      return refuse(421, "refused: this Host is not the console's (see web.allowed_hosts)");
    }
    if (url.pathname === "/console/app.js") {
      return secured(new Response(APP_JS, { headers: { "content-type": "text/javascript; charset=utf-8" } }));
    }
    if (url.pathname === "/console/app.css") {
      return secured(new Response(APP_CSS, { headers: { "content-type": "text/css; charset=utf-8" } }));
    }
    if (req.method === "POST" && !sameOrigin(req)) return refuse(403, "refused: cross-origin request");
    if (req.method !== "GET" && req.method !== "POST") return refuse(405, "method not allowed");
    if (url.pathname === "/console/login") return await login(req);
    const s = sessions.current(req);
    if (!s) return req.method === "GET" ? redirect("/console/login") : refuse(401, "log in first");
    try {
      return req.method === "POST"
        ? await post(req, url, s)
        : await get(url, s, url.searchParams.get("done") ?? undefined);
    } catch (err) {
      if (err instanceof ControlError && err.code === "NOT_FOUND") return refuse(404, err.message);
      throw err;
    }
  };
}

function withFlash(path: string, message: string): string {
  const u = new URL(path, "http://console.invalid");
  u.searchParams.set("done", message);
  return `${u.pathname}${u.search}`;
}
