/**
 * DKIM key sets: the configured keys, loaded from PEM files, with their validity
 * windows. `loadKeySet` is called at start and on every config reload, so rotation needs
 * no restart; `activeKeys` and `keyWarnings` take the clock as an argument.
 * @module
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { AuthError } from "./errors.ts";
import type { DkimKeyConfig } from "../config/auth_schema.ts";

/** One loaded signing key. */
export interface DkimKey {
  domain: string;
  selector: string;
  type: "rsa" | "ed25519";
  keyFile: string;
  /** PKCS#8 PEM, re-exported from the file (structured-clone friendly for Workers). */
  privateKeyPem: string;
  notBefore?: Date;
  notAfter?: Date;
}

/** All keys, grouped by lower-cased signing domain. */
export interface DkimKeySet {
  readonly keys: readonly DkimKey[];
  /** Configured signing domains. */
  domains(): string[];
  /** Keys of `domain` whose window contains `now` (not_before ≤ now < not_after). */
  activeKeys(domain: string, now: Date): DkimKey[];
}

/** Options for loadKeySet. */
export interface LoadKeySetOptions {
  /** Reads a key file; defaults to Deno.readTextFileSync (injected in tests). */
  readFile?: (path: string) => string;
}

/** Parses a PEM private key and checks it matches `type`; errors name the key. */
export function parsePrivateKey(pem: string, type: "rsa" | "ed25519", label: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new AuthError(`${label}: not a PEM private key (${(err as Error).message})`, "KEY_FILE", { cause: err });
  }
  if (key.asymmetricKeyType !== type) {
    throw new AuthError(
      `${label}: configured as ${type} but the file holds a ${key.asymmetricKeyType} key`,
      "KEY_TYPE",
    );
  }
  if (type === "rsa" && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 1024) {
    throw new AuthError(`${label}: RSA keys under 1024 bits are refused (RFC 8301)`, "KEY_TYPE");
  }
  return key;
}

/** Loads every configured key; throws AuthError (KEY_FILE / KEY_TYPE) naming the file and key. */
export function loadKeySet(keys: readonly DkimKeyConfig[], options: LoadKeySetOptions = {}): DkimKeySet {
  const read = options.readFile ?? ((p: string) => Deno.readTextFileSync(p));
  const loaded: DkimKey[] = keys.map((k) => {
    const label = `DKIM key ${k.selector}._domainkey.${k.domain} (${k.key_file})`;
    let pem: string;
    try {
      pem = read(k.key_file);
    } catch (err) {
      throw new AuthError(`${label}: cannot read the key file: ${(err as Error).message}`, "KEY_FILE", { cause: err });
    }
    const key = parsePrivateKey(pem, k.type, label);
    return {
      domain: k.domain.toLowerCase().replace(/\.$/, ""),
      selector: k.selector,
      type: k.type,
      keyFile: k.key_file,
      privateKeyPem: key.export({ type: "pkcs8", format: "pem" }) as string,
      notBefore: k.not_before,
      notAfter: k.not_after,
    };
  });
  return createKeySet(loaded);
}

/** Builds a key set from already loaded keys. */
export function createKeySet(keys: readonly DkimKey[]): DkimKeySet {
  const byDomain = new Map<string, DkimKey[]>();
  for (const k of keys) {
    const list = byDomain.get(k.domain) ?? [];
    list.push(k);
    byDomain.set(k.domain, list);
  }
  return {
    keys,
    domains: () => [...byDomain.keys()],
    activeKeys(domain, now) {
      const t = now.getTime();
      return (byDomain.get(domain.toLowerCase().replace(/\.$/, "")) ?? []).filter((k) =>
        (!k.notBefore || k.notBefore.getTime() <= t) && (!k.notAfter || t < k.notAfter.getTime())
      );
    },
  };
}

/**
 * Operator warnings at `now`: a domain with no valid key left, a key expiring within
 * `warnWithinMs` (default 14 days).
 */
export function keyWarnings(set: DkimKeySet, now: Date, warnWithinMs = 14 * 86_400_000): string[] {
  const warnings: string[] = [];
  for (const domain of set.domains()) {
    const active = set.activeKeys(domain, now);
    if (active.length === 0) warnings.push(`DKIM: no valid key left for ${domain}; its mail goes out unsigned`);
    for (const k of active) {
      if (!k.notAfter) continue;
      const left = k.notAfter.getTime() - now.getTime();
      if (left <= warnWithinMs) {
        const days = Math.max(0, Math.ceil(left / 86_400_000));
        warnings.push(
          `DKIM: key ${k.selector}._domainkey.${domain} expires ${k.notAfter.toISOString()} (in ${days} day(s))`,
        );
      }
    }
  }
  return warnings;
}
