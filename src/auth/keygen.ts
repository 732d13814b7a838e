/**
 * DKIM key generation and the DNS TXT record to publish (RFC 6376 3.6.1, RFC 8463 for
 * Ed25519), and a check of a published record against the private key. These back the
 * future `empathctl dkim keygen|check` commands.
 * @module
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { Buffer } from "node:buffer";

/** Key algorithm. */
export type DkimKeyType = "rsa" | "ed25519";

/** A freshly generated key. */
export interface GeneratedKey {
  type: DkimKeyType;
  /** PKCS#8 PEM. */
  privateKeyPem: string;
  /** TXT record value to publish at `<selector>._domainkey.<domain>`. */
  record: string;
}

/** Generates an RSA-2048 or Ed25519 key and its TXT record value. */
export function generateDkimKey(type: DkimKeyType): GeneratedKey {
  const { privateKey } = type === "rsa"
    ? generateKeyPairSync("rsa", { modulusLength: 2048 })
    : generateKeyPairSync("ed25519");
  return {
    type,
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    record: dnsRecordFor(privateKey),
  };
}

/** The `p=` value: SPKI DER base64 for RSA, the raw 32-byte key base64 for Ed25519. */
export function publicKeyData(key: KeyObject): string {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  const der = pub.export({ type: "spki", format: "der" }) as Buffer;
  return pub.asymmetricKeyType === "ed25519"
    ? der.subarray(der.length - 32).toString("base64")
    : der.toString("base64");
}

/** The TXT record value for a private (or public) key. */
export function dnsRecordFor(key: KeyObject | string): string {
  const obj = typeof key === "string" ? createPrivateKey(key) : key;
  const k = obj.asymmetricKeyType === "ed25519" ? "ed25519" : "rsa";
  return `v=DKIM1; k=${k}; p=${publicKeyData(obj)}`;
}

/** Options for writeDkimKey. */
export interface WriteKeyOptions {
  /** Refuse to overwrite an existing file (default true). */
  createNew?: boolean;
}

/** Generates a key, writes it to `path` with mode 0600 and returns it. */
export async function writeDkimKey(
  path: string,
  type: DkimKeyType,
  options: WriteKeyOptions = {},
): Promise<GeneratedKey> {
  const key = generateDkimKey(type);
  await Deno.writeTextFile(path, key.privateKeyPem, { mode: 0o600, createNew: options.createNew ?? true });
  await Deno.chmod(path, 0o600); // mode is only applied on creation
  return key;
}

/** Outcome of checkPublished. */
export interface PublishedCheck {
  ok: boolean;
  /** "match" | "no-record" | "dns-error" | "several-records" | "bad-record" | "revoked" | "mismatch". */
  status: "match" | "no-record" | "dns-error" | "several-records" | "bad-record" | "revoked" | "mismatch";
  /** A sentence for operators. */
  reason: string;
  name: string;
  /** The record found (chunks joined). */
  published?: string;
  /** The record that should be published. */
  expected: string;
}

/** Looks up the TXT strings of a name: one array of chunks per record. Throws Deno.errors.NotFound for none. */
export type TxtLookup = (name: string) => Promise<string[][]>;

function tags(record: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of record.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) out.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).replace(/\s+/g, ""));
  }
  return out;
}

/** Resolves `<selector>._domainkey.<domain>` and compares it with the private key. */
export async function checkPublished(
  domain: string,
  selector: string,
  privateKeyPem: string,
  lookupTxt: TxtLookup,
): Promise<PublishedCheck> {
  const name = `${selector}._domainkey.${domain}`;
  const key = createPrivateKey(privateKeyPem);
  const expected = dnsRecordFor(key);
  const want = tags(expected);
  let records: string[][];
  try {
    records = await lookupTxt(name);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return { ok: false, status: "no-record", reason: `no TXT record at ${name}`, name, expected };
    }
    return {
      ok: false,
      status: "dns-error",
      reason: `lookup of ${name} failed: ${(err as Error).message}`,
      name,
      expected,
    };
  }
  const dkim = records.map((r) => r.join("")).filter((r) => /^\s*v\s*=\s*DKIM1/i.test(r) || /(^|;)\s*p\s*=/.test(r));
  if (dkim.length === 0) return { ok: false, status: "no-record", reason: `no DKIM record at ${name}`, name, expected };
  if (dkim.length > 1) {
    return { ok: false, status: "several-records", reason: `${dkim.length} DKIM records at ${name}`, name, expected };
  }
  const published = dkim[0]!;
  const got = tags(published);
  const p = got.get("p");
  if (p === undefined) {
    return { ok: false, status: "bad-record", reason: `record at ${name} has no p=`, name, published, expected };
  }
  if (p === "") {
    return { ok: false, status: "revoked", reason: `key at ${name} is revoked (empty p=)`, name, published, expected };
  }
  const kTag = got.get("k") ?? "rsa";
  if (kTag !== want.get("k")) {
    return {
      ok: false,
      status: "mismatch",
      reason: `record at ${name} says k=${kTag} but the private key is ${want.get("k")}`,
      name,
      published,
      expected,
    };
  }
  if (p !== want.get("p")) {
    return {
      ok: false,
      status: "mismatch",
      reason: `public key at ${name} does not match the private key`,
      name,
      published,
      expected,
    };
  }
  return {
    ok: true,
    status: "match",
    reason: `${name} publishes the public key of this private key`,
    name,
    published,
    expected,
  };
}
