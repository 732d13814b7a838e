/**
 * The DKIM signing algorithm (RFC 6376, RFC 8463), free of I/O and state so that it runs
 * the same inline and inside a Worker. mailauth verifies what this produces; we sign with
 * our own code because mailauth's signer cannot oversign (list a header name one more time
 * than it occurs, so that an added From/Subject/... breaks the signature).
 * @module
 */
import { createHash, createPrivateKey, type KeyObject, sign } from "node:crypto";
import { Buffer } from "node:buffer";
import { headerEnd, parseFields, type RawField } from "./headers.ts";

/** Header/body canonicalisation. */
export type Canonicalization = "relaxed/relaxed" | "relaxed/simple" | "simple/relaxed" | "simple/simple";

/** One key to sign with. */
export interface SignKeySpec {
  domain: string;
  selector: string;
  type: "rsa" | "ed25519";
  /** PKCS#8 (or PKCS#1 for RSA) PEM. */
  privateKeyPem: string;
}

/** Everything one signing needs; structured-clone friendly. */
export interface SignRequest {
  message: Uint8Array;
  keys: SignKeySpec[];
  /** Header names to sign (each occurrence is signed). Must contain From. */
  headerList: string[];
  /** Names listed once more than they occur (oversigning). */
  oversign: string[];
  canonicalization: Canonicalization;
  /** Signing time, seconds since the epoch (`t=`). */
  signTime: number;
  /** Precomputed `bh=` (body_hash.ts); then `message` may be the header section alone. */
  bodyHash?: string;
}

/** Bytes to a string with one char per byte (latin1, 1:1). */
export function toBinary(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}

/** Canonicalises a body (its text with CRLF or LF line ends) and returns it as a binary string. */
export function canonBody(body: string, mode: "relaxed" | "simple"): string {
  let lines = body.replace(/\r?\n/g, "\r\n").split("\r\n");
  if (mode === "relaxed") lines = lines.map((l) => l.replace(/[ \t]+/g, " ").replace(/ $/, ""));
  // The split leaves "" after a final CRLF; drop all trailing empty lines.
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  if (lines.length === 0) return mode === "simple" ? "\r\n" : "";
  return lines.join("\r\n") + "\r\n";
}

/** Canonicalises one header field (raw, with line end) without a trailing CRLF. */
export function canonHeader(field: RawField, mode: "relaxed" | "simple"): string {
  const raw = field.raw.replace(/\r?\n$/, "").replace(/\r?\n/g, "\r\n");
  if (mode === "simple") return raw;
  const value = raw.slice(raw.indexOf(":") + 1).replace(/\r\n/g, "").replace(/[ \t]+/g, " ").trim();
  return `${field.key}:${value}`;
}

/** Chooses the header instances to sign and the h= list (bottom-up per name, plus oversigned names). */
export function selectHeaders(
  fields: RawField[],
  headerList: string[],
  oversign: string[],
): { names: string[]; chosen: RawField[] } {
  const names: string[] = [];
  const chosen: RawField[] = [];
  const over = new Set(oversign.map((n) => n.toLowerCase()));
  const seen = new Set<string>();
  for (const wanted of headerList) {
    const key = wanted.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    for (let i = fields.length - 1; i >= 0; i--) {
      const f = fields[i]!;
      if (f.key === key) {
        names.push(f.name);
        chosen.push(f);
      }
    }
    if (over.has(key)) names.push(wanted);
  }
  for (const extra of oversign) {
    if (!seen.has(extra.toLowerCase())) names.push(extra);
  }
  return { names, chosen };
}

function fold(tags: string[]): string {
  const lines: string[] = [];
  let line = "DKIM-Signature:";
  for (const tag of tags) {
    if (line.length + tag.length + 1 > 76 && line !== "DKIM-Signature:") {
      lines.push(line);
      line = "";
    }
    line += " " + tag;
  }
  lines.push(line);
  return lines.join("\r\n");
}

function wrapB(b: string): string {
  return (b.match(/.{1,72}/g) ?? [""]).join("\r\n ");
}

/** Parsed keys by PEM (parsing costs ~0.3 ms, a fifth of an RSA-2048 signature); per thread, bounded. */
const parsedKeys = new Map<string, KeyObject>();
function privateKeyOf(pem: string): KeyObject {
  let key = parsedKeys.get(pem);
  if (!key) {
    if (parsedKeys.size >= 64) parsedKeys.clear();
    parsedKeys.set(pem, key = createPrivateKey(pem));
  }
  return key;
}

/**
 * Signs the message with every key and returns the DKIM-Signature fields to prepend
 * (each ending in CRLF), in key order.
 */
export function signDkim(request: SignRequest): string {
  const text = toBinary(request.message);
  const end = headerEnd(request.message);
  const fields = parseFields(text.slice(0, end));
  const [hMode, bMode] = request.canonicalization.split("/") as ["relaxed" | "simple", "relaxed" | "simple"];
  const bh = request.bodyHash ??
    createHash("sha256").update(Buffer.from(canonBody(text.slice(end), bMode), "latin1")).digest("base64");
  const { names, chosen } = selectHeaders(fields, request.headerList, request.oversign);
  const signedHeaders = chosen.map((f) => canonHeader(f, hMode) + "\r\n").join("");
  let out = "";
  for (const key of request.keys) {
    const algo = key.type === "rsa" ? "rsa-sha256" : "ed25519-sha256";
    const tags = [
      "v=1;",
      `a=${algo};`,
      `c=${request.canonicalization};`,
      `d=${key.domain};`,
      `s=${key.selector};`,
      `t=${request.signTime};`,
      `h=${names.join(":")};`,
      `bh=${bh};`,
      "b=",
    ];
    const unsigned = fold(tags);
    const sigField = canonHeader({ name: "DKIM-Signature", key: "dkim-signature", raw: unsigned }, hMode);
    const data = Buffer.from(signedHeaders + sigField, "latin1");
    const pk = privateKeyOf(key.privateKeyPem);
    const b = key.type === "rsa"
      ? sign("sha256", data, pk).toString("base64")
      : sign(null, createHash("sha256").update(data).digest(), pk).toString("base64");
    out += unsigned + "\r\n " + wrapB(b) + "\r\n";
  }
  return out;
}
