/**
 * HTTP webhook delivery as a {@link DeliveryTransport}: one POST per message and
 * destination domain (`[delivery.domains."…"] transport = "http"`, `url`, `format`).
 *
 * - `format = "raw"`: the RFC 5322 message is the body (`message/rfc822`); the
 *   envelope travels in `Empath-Envelope-From`, `Empath-Envelope-To` (comma separated)
 *   and `Empath-Queue-Id` headers.
 * - `format = "json"`: `{ id, envelope: { from, to }, message: { headers, subject, from,
 *   to, cc, date, messageId, text, html, attachments: [{ filename, contentType, size,
 *   contentId, content (base64) }] } }`, parsed with mailparser. With `attachments = "url"`
 *   an attachment has `url` and `sha256` instead of `content`: it is written to
 *   `attachment_dir` and served by the operator under `attachment_base_url`
 *   (see webhook_attachments.ts).
 *
 * Requests are signed the Standard Webhooks way: `webhook-id`, `webhook-timestamp`
 * (seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
 * A `secret` of the form `whsec_<base64>` is base64-decoded; any other is used as text.
 * The id is the same for every retry of the same message and domain (idempotency key).
 *
 * Status mapping: 2xx delivered; 408, 429 and 5xx deferred (`Retry-After`, seconds or a
 * date, sets the earliest retry); any other status fails the recipients (a DSN follows).
 * Timeouts, refused and reset connections are deferred. Mutual TLS: `client_cert`,
 * `client_key` and `ca_file` (PEM files).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { Readable } from "node:stream";
 * import { parseConfig } from "../config/load.ts";
 * import { createHttpTransport } from "./http_transport.ts"; // @ts-ignore deno#26900
 *
 * const received = Promise.withResolvers<string>();
 * const hook = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
 *   received.resolve(await req.text());
 *   return new Response(null, { status: 204 });
 * });
 * const config = parseConfig(`[delivery.domains."hooks.example"]\ntransport = "http"\nurl = "http://127.0.0.1:${hook.addr.port}/mail"\n`, "config.toml");
 * const http = createHttpTransport({ config: () => config, log: getLogger(["empath"]) });
 * const data = "Subject: hi\r\n\r\nbody\r\n";
 * const message = { sender: "a@example.com", recipients: [{ address: "in@hooks.example" }], size: data.length, open: () => Readable.from([new TextEncoder().encode(data)]) };
 * const result = await http.deliver({ id: "01JD3V6Y8Q3M0K2V9X7B5N4C1R", domain: "hooks.example", message });
 * assert.equal(result.recipients[0]?.outcome, "delivered");
 * assert.equal(await received.promise, data); // format "raw": the message as the body
 * await http.close?.();
 * await hook.shutdown();
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { Buffer } from "node:buffer";
import { simpleParser } from "mailparser";
import type { Config } from "../config/mod.ts";
import {
  allRecipients,
  type DeliveryTransport,
  type OutboundMessage,
  type TransportJob,
  type TransportResult,
} from "./transport.ts";
import { chooseTransport, type DomainPolicy } from "./transport_select.ts";
import { type AttachmentStoreOptions, storeAttachment } from "./webhook_attachments.ts";

/** What the HTTP transport needs. */
export interface HttpTransportOptions {
  config: () => Config;
  log: Logger;
}

/** Default request timeout when `request_timeout` is not set. */
export const DEFAULT_HTTP_TIMEOUT_MS = 30_000;

const enc = new TextEncoder();

/** Standard Webhooks signature (`v1,<base64>`) of `id.timestamp.body` under `secret`. */
export async function signWebhook(secret: string, id: string, timestamp: number, body: Uint8Array): Promise<string> {
  const keyBytes = secret.startsWith("whsec_") ? Buffer.from(secret.slice(6), "base64") : enc.encode(secret);
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const prefix = enc.encode(`${id}.${timestamp}.`);
  const signed = new Uint8Array(prefix.length + body.length);
  signed.set(prefix);
  signed.set(body, prefix.length);
  const mac = await crypto.subtle.sign("HMAC", key, signed);
  return `v1,${Buffer.from(mac).toString("base64")}`;
}

/** `Retry-After` (delay-seconds or an HTTP date) as epoch ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return now + Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : at;
}

async function readAll(message: OutboundMessage): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of message.open()) {
    chunks.push(chunk as Uint8Array);
    size += (chunk as Uint8Array).length;
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

async function jsonBody(
  id: string,
  message: OutboundMessage,
  raw: Uint8Array,
  store?: AttachmentStoreOptions,
): Promise<Uint8Array<ArrayBuffer>> {
  const parsed = await simpleParser(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength));
  const addresses = (v: typeof parsed.to) =>
    (v === undefined ? [] : Array.isArray(v) ? v : [v]).flatMap((a) => a.value);
  const doc = {
    id,
    envelope: { from: message.sender, to: message.recipients.map((r) => r.address) },
    message: {
      headers: parsed.headerLines.map((h) => ({ name: h.key, line: h.line })),
      subject: parsed.subject,
      from: parsed.from?.value ?? [],
      to: addresses(parsed.to),
      cc: addresses(parsed.cc),
      date: parsed.date?.toISOString(),
      messageId: parsed.messageId,
      text: parsed.text,
      html: parsed.html === false ? undefined : parsed.html,
      attachments: await Promise.all(parsed.attachments.map(async (a) => ({
        filename: a.filename,
        contentType: a.contentType,
        size: a.size,
        contentId: a.contentId,
        ...(store ? await storeAttachment(a.content, store) : { content: a.content.toString("base64") }),
      }))),
    },
  };
  return enc.encode(JSON.stringify(doc));
}

/** Writing an attachment for `attachments = "url"` failed (a local problem, not the receiver's). */
class AttachmentStoreError extends Error {
  readonly code = "ATTACHMENT_STORE";
}

/** Creates the HTTP webhook transport. */
export function createHttpTransport(options: HttpTransportOptions): DeliveryTransport {
  const { log } = options;
  const clients = new Map<string, Deno.HttpClient>();

  function clientFor(policy: DomainPolicy): Deno.HttpClient | undefined {
    if (!policy.client_cert && !policy.ca_file) return undefined;
    const key = `${policy.client_cert}|${policy.client_key}|${policy.ca_file}`;
    let client = clients.get(key);
    if (!client) {
      client = Deno.createHttpClient({
        ...(policy.client_cert && policy.client_key
          ? { cert: Deno.readTextFileSync(policy.client_cert), key: Deno.readTextFileSync(policy.client_key) }
          : {}),
        caCerts: policy.ca_file ? [Deno.readTextFileSync(policy.ca_file)] : undefined,
      });
      clients.set(key, client);
    }
    return client;
  }

  async function deliver(job: TransportJob, signal?: AbortSignal): Promise<TransportResult> {
    const { id, domain, message } = job;
    const rcpts = message.recipients.map((r) => r.address);
    const choice = chooseTransport(domain, options.config());
    if (choice.kind !== "http") {
      const reply = `451 4.3.5 No webhook URL configured for ${domain}`;
      return { recipients: allRecipients(rcpts, "deferred", reply), error: reply };
    }
    const policy = choice.policy;
    const url = new URL(policy.url);
    const server = `${url.origin}${url.pathname}`;
    const deferred = (reply: string, extra: Partial<TransportResult> = {}): TransportResult => ({
      recipients: allRecipients(rcpts, "deferred", reply, Number(reply.slice(0, 3)), server),
      server,
      error: reply,
      ...extra,
    });
    const webhookId = `${id}-${domain}`;
    const timeoutMs = policy.request_timeout ?? DEFAULT_HTTP_TIMEOUT_MS;
    let response: Response;
    try {
      const raw = await readAll(message);
      const json = policy.format === "json";
      const store = policy.attachments === "url" && policy.attachment_dir && policy.attachment_base_url
        ? { dir: policy.attachment_dir, baseUrl: policy.attachment_base_url }
        : undefined;
      const body = json
        ? await jsonBody(id, message, raw, store).catch((err: Error) => {
          throw new AttachmentStoreError(err.message);
        })
        : raw;
      const timestamp = Math.floor(Date.now() / 1000);
      const headers: Record<string, string> = {
        "content-type": json ? "application/json" : "message/rfc822",
        "webhook-id": webhookId,
        "webhook-timestamp": String(timestamp),
        "empath-queue-id": id,
        "empath-envelope-from": message.sender,
        "empath-envelope-to": rcpts.join(","),
      };
      if (policy.secret) headers["webhook-signature"] = await signWebhook(policy.secret, webhookId, timestamp, body);
      const timeout = AbortSignal.timeout(timeoutMs);
      response = await fetch(url, {
        method: "POST",
        headers,
        body,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        client: clientFor(policy),
      });
      await response.body?.cancel().catch(() => {});
    } catch (err) {
      const e = err as Error;
      if (e instanceof AttachmentStoreError) {
        log.warning("{id}: webhook attachments not stored: {error}", { id, error: e.message });
        return deferred(`451 4.3.0 Cannot store the attachments for ${server}: ${e.message}`);
      }
      const cause = (e.cause as Error | undefined)?.message; // e.g. the TLS alert behind "fetch failed"
      const what = e.name === "TimeoutError"
        ? `no response within ${timeoutMs} ms`
        : cause
        ? `${e.message}: ${cause}`
        : e.message;
      log.info("{id}: webhook {server} failed: {error}", { id, server, error: what });
      return deferred(`451 4.4.1 Webhook ${server} unreachable: ${what}`, { connectionFailed: true });
    }
    const status = response.status;
    const text = `HTTP ${status}${response.statusText ? ` ${response.statusText}` : ""} from ${server}`;
    if (status >= 200 && status < 300) {
      return { recipients: allRecipients(rcpts, "delivered", `250 2.0.0 ${text}`, 250, server), server };
    }
    if (status === 408 || status === 429 || status >= 500) {
      const retryAt = parseRetryAfter(response.headers.get("retry-after"), Date.now());
      return deferred(`451 4.3.0 ${text}`, { retryAt });
    }
    const reply = `554 5.3.0 ${text}`;
    return { recipients: allRecipients(rcpts, "failed", reply, 554, server), server, error: reply };
  }

  function close() {
    for (const client of clients.values()) client.close();
    clients.clear();
    return Promise.resolve();
  }

  return { kind: "http", deliver, close };
}
