/**
 * Certificates for TLS tests, made with the openssl CLI.
 * @module
 */

/**
 * A test CA and a "localhost" / 127.0.0.1 server certificate it signed, made with the
 * openssl CLI (Deno's TLS client refuses a self-signed CA certificate as a server's
 * own, so a client that checks the server needs a real chain). Returns PEM file paths and the CA's PEM.
 */
export async function certificateChain(dir: string): Promise<{ cert: string; key: string; caPem: string }> {
  const path = (name: string) => `${dir}/${name}`;
  const openssl = async (args: string[]) => {
    const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" }).output();
    if (out.code !== 0) throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    path("ca.key"),
    "-out",
    path("ca.pem"),
    "-days",
    "2",
    "-subj",
    "/CN=Empath test CA",
  ]);
  await openssl([
    "req",
    "-new",
    ...ec,
    "-keyout",
    path("key.pem"),
    "-out",
    path("server.csr"),
    "-subj",
    "/CN=localhost",
  ]);
  await Deno.writeTextFile(
    path("server.ext"),
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    path("server.csr"),
    "-CA",
    path("ca.pem"),
    "-CAkey",
    path("ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    path("server.ext"),
    "-out",
    path("cert.pem"),
  ]);
  return { cert: path("cert.pem"), key: path("key.pem"), caPem: await Deno.readTextFile(path("ca.pem")) };
}
