import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { canonBody, toBinary } from "../../src/auth/dkim_core.ts";
import { createBodyHasher, createInlineSigner, createKeySet, signMessage, signStream } from "../../src/auth/mod.ts";
import { ED_KEY, message, RSA_KEY } from "./fixtures.ts";

const whole = (body: string, mode: "relaxed" | "simple") =>
  createHash("sha256").update(Buffer.from(canonBody(body, mode), "latin1")).digest("base64");

Deno.test("streaming body hash equals the whole-body hash for any chunking", () => {
  const bodies = [
    "",
    "\r\n\r\n",
    "a  b \t\r\n\r\nc\r\n\r\n\r\n",
    "no end",
    "bare\rcr\r\nx\ny\r\n",
    "  \r\n \t \r\nx\r\n \r\n",
    "line\r",
  ];
  const rnd = (n: number) => Math.floor(Math.random() * n);
  for (let k = 0; k < 200; k++) {
    const alphabet = ["a", " ", "\t", "\r", "\n", "\r\n", "b"];
    bodies.push(Array.from({ length: rnd(40) }, () => alphabet[rnd(alphabet.length)]).join(""));
  }
  for (const body of bodies) {
    const bytes = new Uint8Array([...body].map((c) => c.charCodeAt(0)));
    for (const mode of ["relaxed", "simple"] as const) {
      for (const step of [1, 2, 3, 7, 1000]) {
        const h = createBodyHasher(mode);
        for (let i = 0; i < bytes.length; i += step) h.update(bytes.subarray(i, i + step));
        assertEquals(h.digest(), whole(toBinary(bytes), mode), `${mode} step ${step}: ${JSON.stringify(body)}`);
      }
    }
  }
});

Deno.test("signStream gives the same signature as signMessage", async () => {
  const keySet = createKeySet([
    { domain: "a.test", selector: "r", type: "rsa", keyFile: "-", privateKeyPem: RSA_KEY.privateKeyPem },
    { domain: "a.test", selector: "e", type: "ed25519", keyFile: "-", privateKeyPem: ED_KEY.privateKeyPem },
  ]);
  const signer = createInlineSigner();
  const msg = message("alice@a.test");
  const now = new Date("2026-01-01T00:00:00Z");
  const direct = await signMessage(msg, { keySet, signer, now });
  for (const step of [1, 5, 64, 100_000]) {
    const chunks = [];
    for (let i = 0; i < msg.length; i += step) chunks.push(msg.subarray(i, i + step));
    const streamed = await signStream(chunks, { keySet, signer, now });
    // RSA PKCS#1 v1.5 and Ed25519 are deterministic: the same input gives the same fields.
    assertEquals(streamed.headers, direct.headers);
  }
});
