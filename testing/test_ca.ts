/**
 * A test CA and server certificates it signs, made with the openssl CLI (EC P-256):
 * for TLS peers of the transport-security tests (SMTP with DANE, MTA-STS policy hosts,
 * TLS-RPT HTTPS endpoints).
 *
 * @example
 * ```ts
 * const ca = await createTestCa(await Deno.makeTempDir());
 * const leaf = await ca.issue("mx.example.test", ["mx.example.test", "IP:127.0.0.1"]);
 * // leaf.certPem, leaf.keyPem, leaf.certFile, leaf.keyFile, ca.pem
 * ```
 * @module
 */

/** One issued server certificate. */
export interface TestCertificate {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
  /** The leaf and the CA, in the order a server sends them. */
  chainPem: string;
}

/** A CA that can issue server certificates. */
export interface TestCa {
  pem: string;
  file: string;
  /** Issues a server certificate (with `clientAuth`, one usable as a TLS client certificate too). */
  issue(
    commonName: string,
    altNames: string[],
    options?: { days?: number; clientAuth?: boolean },
  ): Promise<TestCertificate>;
}

async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" }).output();
  if (out.code !== 0) throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** Makes a CA in `dir` (its name in the subject). */
export async function createTestCa(dir: string, name = "Empath transport-security test CA"): Promise<TestCa> {
  const file = `${dir}/ca.pem`;
  await openssl([
    "req",
    "-x509",
    ...EC,
    "-keyout",
    `${dir}/ca.key`,
    "-out",
    file,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
  ]);
  const pem = await Deno.readTextFile(file);
  let serial = 0;
  return {
    pem,
    file,
    async issue(commonName, altNames, options = {}) {
      const base = `${dir}/leaf-${++serial}`;
      await openssl([
        "req",
        "-new",
        ...EC,
        "-keyout",
        `${base}.key`,
        "-out",
        `${base}.csr`,
        "-subj",
        `/CN=${commonName}`,
      ]);
      const san = altNames.map((n) => n.startsWith("IP:") ? n : `DNS:${n}`).join(",");
      await Deno.writeTextFile(
        `${base}.ext`,
        `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth${
          options.clientAuth ? ",clientAuth" : ""
        }\nsubjectAltName=${san}\n`,
      );
      await openssl([
        "x509",
        "-req",
        "-in",
        `${base}.csr`,
        "-CA",
        file,
        "-CAkey",
        `${dir}/ca.key`,
        "-CAcreateserial",
        "-out",
        `${base}.pem`,
        "-days",
        String(options.days ?? 2),
        "-extfile",
        `${base}.ext`,
      ]);
      const certPem = await Deno.readTextFile(`${base}.pem`);
      const keyPem = await Deno.readTextFile(`${base}.key`);
      await Deno.writeTextFile(`${base}-chain.pem`, certPem + pem);
      return { certFile: `${base}-chain.pem`, keyFile: `${base}.key`, certPem, keyPem, chainPem: certPem + pem };
    },
  };
}
