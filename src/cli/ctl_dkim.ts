/**
 * `empathctl dkim keygen DOMAIN --selector S [--type rsa|ed25519] [--out FILE] [--json]`:
 * runs on the operator's machine without a daemon (a key is made where the config will
 * point to it): writes the private key (PKCS#8 PEM, mode 0600, never over an existing
 * file) and prints the DNS TXT record and the `[[dkim.keys]]` entry. `dkim check` asks the
 * daemon (it knows the configured keys; text form in ctl_dkim_text.ts).
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
// keygen.ts directly, not auth/mod.ts: empathctl starts without loading mailauth.
import { type DkimKeyType, writeDkimKey } from "../auth/keygen.ts";
import { UsageError } from "./ctl_commands.ts";

/** What keygen made. */
export interface KeygenResult {
  domain: string;
  selector: string;
  type: DkimKeyType;
  key_file: string;
  /** Where to publish the record. */
  record_name: string;
  /** The TXT record value. */
  record: string;
}

const USAGE = "dkim keygen DOMAIN --selector S [--type rsa|ed25519] [--out FILE] [--json]";

/** Runs `dkim keygen` with the arguments after "keygen"; resolves to the exit code. */
export async function runDkimKeygen(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        selector: { type: "string" },
        type: { type: "string" },
        out: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        // empathctl's global options, accepted for uniformity and not used (no daemon is asked).
        socket: { type: "string" },
        config: { type: "string" },
        "token-file": { type: "string" },
        timeout: { type: "string" },
        "max-response": { type: "string" },
      },
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (usage: empathctl ${USAGE})`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(`Usage: empathctl ${USAGE}\n\nwrites a DKIM private key (mode 0600) and prints the DNS TXT record`);
    return 0;
  }
  const domain = positionals[0]?.toLowerCase().replace(/\.$/, "");
  if (!domain || positionals.length > 1) throw new UsageError(`expected one DOMAIN (usage: empathctl ${USAGE})`);
  const selector = values.selector;
  if (!selector || !/^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/.test(selector)) {
    throw new UsageError(`--selector S is required: letters, digits, '-', '_' and dots (usage: empathctl ${USAGE})`);
  }
  const type = (values.type ?? "rsa") as DkimKeyType;
  if (type !== "rsa" && type !== "ed25519") throw new UsageError(`--type "${type}": expected rsa or ed25519`);
  const keyFile = resolve(values.out ?? `${domain}.${selector}.${type}.pem`);
  let key;
  try {
    key = await writeDkimKey(keyFile, type);
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) throw new Error(`${keyFile} exists; not overwritten`);
    throw err;
  }
  const result: KeygenResult = {
    domain,
    selector,
    type,
    key_file: keyFile,
    record_name: `${selector}._domainkey.${domain}`,
    record: key.record,
  };
  console.log(values.json ? JSON.stringify(result, null, 2) : keygenText(result));
  return 0;
}

function keygenText(r: KeygenResult): string {
  return [
    `wrote ${r.type} key ${r.key_file} (mode 0600)`,
    ``,
    `Publish this DNS TXT record:`,
    `${r.record_name}. IN TXT "${r.record}"`,
    ``,
    `Then add to config.toml:`,
    `[[dkim.keys]]`,
    `domain = "${r.domain}"`,
    `selector = "${r.selector}"`,
    `type = "${r.type}"`,
    `key_file = "${r.key_file}"`,
    `# not_before = 2026-01-01T00:00:00Z   # start signing once the record is published`,
  ].join("\n");
}
