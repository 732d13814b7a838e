/**
 * Attachments of `format = "json"` webhooks handed over as URLs instead of base64
 * (`attachments = "url"`): each attachment is written to `attachment_dir` under the hex
 * SHA-256 of its content and the JSON names it as `attachment_base_url` + that name. The
 * name is content-addressed: a retry or a second message with the same attachment writes
 * the same file, and only someone who already has the exact content can guess the URL.
 * Serving the directory (a web server, an object-store sync) and removing old files
 * (e.g. by age) are the operator's; files are written before the POST and never removed
 * by Empath.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { storeAttachment } from "./webhook_attachments.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const stored = await storeAttachment(new Uint8Array([0, 1, 2, 3]), { dir, baseUrl: "https://files.example/att/" });
 * assert.equal(stored.url, `https://files.example/att/${stored.sha256}`);
 * assert.deepEqual(await Deno.readFile(`${dir}/${stored.sha256}`), new Uint8Array([0, 1, 2, 3]));
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { Buffer } from "node:buffer";

/** Where attachments go and how they are addressed. */
export interface AttachmentStoreOptions {
  /** Directory the files are written to (created if missing). */
  dir: string;
  /** URL prefix the directory is served under; the file name is appended. */
  baseUrl: string;
}

/** A stored attachment. */
export interface StoredAttachment {
  url: string;
  /** Hex SHA-256 of the content (also the file name). */
  sha256: string;
}

/** Writes `content` (once; an existing file of the same hash is kept) and returns its URL. */
export async function storeAttachment(content: Uint8Array, options: AttachmentStoreOptions): Promise<StoredAttachment> {
  const digest = await crypto.subtle.digest("SHA-256", new Uint8Array(content));
  const sha256 = Buffer.from(digest).toString("hex");
  const path = `${options.dir}/${sha256}`;
  const exists = await Deno.stat(path).then((s) => s.size === content.length, () => false);
  if (!exists) {
    await Deno.mkdir(options.dir, { recursive: true });
    const tmp = `${path}.${crypto.randomUUID()}.tmp`;
    try {
      await Deno.writeFile(tmp, content, { mode: 0o644 });
      await Deno.rename(tmp, path); // readers never see a partial file
    } catch (err) {
      await Deno.remove(tmp).catch(() => {});
      throw err;
    }
  }
  const base = options.baseUrl.endsWith("/") ? options.baseUrl : `${options.baseUrl}/`;
  return { url: `${base}${sha256}`, sha256 };
}
