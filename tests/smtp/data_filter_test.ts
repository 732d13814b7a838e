import assert from "node:assert/strict";
import fc from "fast-check";
import { DataFilter, headerEnd } from "../../src/smtp/data_filter.ts";
import { SmtpError } from "../../src/smtp/errors.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (parts: Uint8Array[]) => new TextDecoder().decode(Buffer.concat(parts));

function run(input: string, mode: "reject" | "normalize" = "reject", chunk = 3, maxLineLength = 1000): string {
  const f = new DataFilter({ maxLineLength, bareNewline: mode });
  const out: Uint8Array[] = [];
  const bytes = enc(input);
  for (let i = 0; i < bytes.length; i += chunk) out.push(...f.push(bytes.subarray(i, i + chunk)));
  out.push(...f.end());
  return dec(out);
}

const SMUGGLING = ["\n.\n", "\n.\r\n", "\r.\r", "\r\n.\n", "\n.\r", "\r.\r\n", "\r\n.\r"];

for (const seq of SMUGGLING) {
  Deno.test(`rejects message data containing the smuggling sequence ${JSON.stringify(seq)}`, () => {
    const msg = `Subject: a\r\n\r\nfirst${seq}MAIL FROM:<evil@x>\r\n`;
    assert.throws(() => run(msg), (err: Error) => err instanceof SmtpError && err.responseCode === 554);
  });
  Deno.test(`normalize mode turns ${JSON.stringify(seq)} into plain CRLF lines`, () => {
    const out = run(`Subject: a\r\n\r\nfirst${seq}rest\r\n`, "normalize");
    assert.ok(!/[^\r]\n|\r[^\n]/.test(out), JSON.stringify(out));
  });
}

Deno.test("CRLF-only data passes through unchanged whatever the chunking", () => {
  fc.assert(fc.property(
    fc.array(fc.stringMatching(/^[ -~]{0,80}$/), { maxLength: 30 }),
    fc.integer({ min: 1, max: 50 }),
    (lines, chunk) => {
      const msg = lines.map((l) => l + "\r\n").join("");
      assert.equal(run(msg, "reject", chunk), msg);
    },
  ));
});

Deno.test("normalize mode output never contains a bare CR or LF", () => {
  fc.assert(fc.property(fc.stringMatching(/^[a.\r\n]{0,60}$/), fc.integer({ min: 1, max: 9 }), (s, chunk) => {
    const out = run(s, "normalize", chunk);
    assert.ok(!/(^|[^\r])\n|\r(?!\n)/.test(out), JSON.stringify(out));
  }));
});

Deno.test("a NUL byte is rejected with 554 5.6.0", () => {
  assert.throws(() => run("Subject: a\r\n\r\nx\0y\r\n"), /5\.6\.0 .*NUL/);
});

Deno.test("a line over the limit is rejected, one at the limit is accepted", () => {
  assert.equal(run("x".repeat(98) + "\r\n", "reject", 7, 100), "x".repeat(98) + "\r\n");
  assert.throws(() => run("x".repeat(99) + "\r\n", "reject", 7, 100), /longer than 100 octets/);
});

Deno.test("the header section is handed over once, before any body bytes", () => {
  const f = new DataFilter({ maxLineLength: 1000, bareNewline: "reject" });
  const seen: string[] = [];
  f.onHeader = (h) => {
    seen.push(new TextDecoder().decode(h));
    return [enc("X-Added: 1\r\n"), h];
  };
  const out = [...f.push(enc("A: 1\r\nB: 2\r")), ...f.push(enc("\n\r\nbody\r\n")), ...f.end()];
  assert.deepEqual(seen, ["A: 1\r\nB: 2\r\n\r\n"]);
  assert.equal(dec(out), "X-Added: 1\r\nA: 1\r\nB: 2\r\n\r\nbody\r\n");
});

Deno.test("headerEnd finds the blank line and treats a leading CRLF as no headers", () => {
  assert.equal(headerEnd(enc("A: 1\r\n\r\nbody")), 8);
  assert.equal(headerEnd(enc("\r\nbody")), 0);
  assert.equal(headerEnd(enc("A: 1\r\n")), -1);
});

/** The per-byte rules, spelled out: the first violation's code, or the normalised text. */
function reference(input: string, mode: "reject" | "normalize", maxContent: number): string {
  let out = "";
  let lineLen = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (c === "\r" && input[i + 1] === "\n") {
      out += "\r\n";
      lineLen = 0;
      i++;
    } else if (c === "\r" || c === "\n") {
      if (mode === "reject") return "DATA_BARE_NEWLINE";
      out += "\r\n";
      lineLen = 0;
    } else if (c === "\0") return "DATA_NUL";
    else if (++lineLen > maxContent) return "DATA_LINE_TOO_LONG";
    else out += c;
  }
  return out;
}

Deno.test("the indexOf fast path gives the per-byte answer: same errors, same output, any chunking", () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom("a", "b", " ", "\r", "\n", "\r\n", "\r\n", "\r\n", "\0"), { maxLength: 60 }),
      fc.integer({ min: 1, max: 20 }),
      fc.constantFrom<"reject" | "normalize">("reject", "normalize"),
      fc.integer({ min: 3, max: 12 }),
      (parts, chunk, mode, maxLineLength) => {
        const msg = "Subject: x\r\n\r\n" + parts.join("");
        const want = reference(msg, mode, maxLineLength - 2);
        let got: string;
        try {
          got = run(msg, mode, chunk, maxLineLength);
        } catch (err) {
          got = err instanceof SmtpError ? err.code : String(err);
        }
        assert.equal(got, want);
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("the fast path reads bytes, not characters: 8-bit data in Buffer chunks gives the per-byte answer", () => {
  // 0x85 is NEL and 0x8D/0x8A sit where windows-1252 differs from latin1: none may pass for CR or LF.
  const BYTES = [0x61, 0x20, 0x0d, 0x0a, 0x00, 0x85, 0x8a, 0x8d, 0xc3, 0xa9, 0xff];
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.constantFrom(...BYTES), fc.constant(-1)), { maxLength: 80 }),
      fc.integer({ min: 1, max: 25 }),
      fc.constantFrom<"reject" | "normalize">("reject", "normalize"),
      fc.integer({ min: 3, max: 12 }),
      (codes, chunk, mode, maxLineLength) => {
        // -1 stands for a CRLF, so that well-formed runs (the fast path's case) are common.
        const body = codes.flatMap((c) => c === -1 ? [0x0d, 0x0a] : [c]);
        const bytes = Buffer.concat([Buffer.from("Subject: x\r\n\r\n"), Buffer.from(body)]);
        const want = reference(bytes.toString("latin1"), mode, maxLineLength - 2);
        let got: string;
        try {
          const f = new DataFilter({ maxLineLength, bareNewline: mode });
          const out: Uint8Array[] = [];
          for (let i = 0; i < bytes.length; i += chunk) out.push(...f.push(bytes.subarray(i, i + chunk)));
          out.push(...f.end());
          got = Buffer.concat(out).toString("latin1");
        } catch (err) {
          got = err instanceof SmtpError ? err.code : String(err);
        }
        assert.equal(got, want);
      },
    ),
    { numRuns: 2000 },
  );
});
