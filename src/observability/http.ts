/**
 * The operator's HTTP listener (Deno.serve, loopback by default):
 * - `GET /metrics`: Prometheus text format;
 * - `GET /health/live`: 200 while the process runs;
 * - `GET /health/ready`: 200 when every readiness check passes, else 503 with a JSON
 *   body naming the failing checks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createMetrics } from "./metrics.ts";
 * import { startHttp } from "./http.ts"; // @ts-ignore deno#26900
 *
 * const http = await startHttp({ host: "127.0.0.1", port: 0 }, createMetrics(), { spool: () => Promise.resolve() });
 * const res = await fetch(`http://127.0.0.1:${http.port}/health/ready`);
 * assert.equal(res.status, 200);
 * await res.body?.cancel();
 * await http.close();
 * ```
 * @module
 */
import type { Metrics } from "./metrics.ts";

/** A readiness check: resolves when healthy, throws with the reason otherwise. */
export type ReadinessCheck = () => Promise<void>;

/** A running HTTP listener. */
export interface HttpServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

async function readiness(checks: Record<string, ReadinessCheck>) {
  const results = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      try {
        await check();
        return [name, { ok: true }] as const;
      } catch (err) {
        return [name, { ok: false, error: (err as Error).message }] as const;
      }
    }),
  );
  const failing = results.filter(([, r]) => !r.ok).map(([name]) => name);
  return { ok: failing.length === 0, failing, checks: Object.fromEntries(results) };
}

/** An application mounted on the listener (the web console): a response, or undefined for "not mine". */
export type HttpApp = (req: Request) => Promise<Response | undefined>;

/**
 * Starts the listener; resolves once it is bound. `app` (late-bound: it may need the bound
 * port) sees each request first. `info` adds facts to the readiness body
 * that do not fail it (e.g. `dane: "not in effect: …"`).
 */
export function startHttp(
  address: { host: string; port: number },
  metrics: Metrics,
  checks: Record<string, ReadinessCheck>,
  app?: () => HttpApp | undefined,
  info?: () => Record<string, unknown>,
): Promise<HttpServer> {
  return new Promise((resolve, reject) => {
    try {
      const server = Deno.serve({
        hostname: address.host,
        port: address.port,
        onListen: (addr) => resolve({ host: addr.hostname, port: addr.port, close: () => server.shutdown() }),
        onError: (err) => new Response(`internal error: ${(err as Error).message}\n`, { status: 500 }),
      }, async (req) => {
        const mounted = await app?.()?.(req);
        if (mounted) return mounted;
        const path = new URL(req.url).pathname;
        if (req.method !== "GET") return new Response("method not allowed\n", { status: 405 });
        if (path === "/metrics") {
          return new Response(await metrics.registry.metrics(), {
            headers: { "content-type": metrics.registry.contentType },
          });
        }
        if (path === "/health/live") return Response.json({ ok: true });
        if (path === "/health/ready") {
          const report = { ...await readiness(checks), ...(info ? { info: info() } : {}) };
          return Response.json(report, { status: report.ok ? 200 : 503 });
        }
        return new Response("not found: try /metrics, /health/live or /health/ready\n", { status: 404 });
      });
    } catch (err) {
      reject(err);
    }
  });
}
