import assert from "node:assert/strict";
import { canonicalAddress, canonicalDomain, domainOf, isAscii, unicodeDomain } from "../../src/util/address.ts";

Deno.test("canonicalDomain maps every IDNA-equivalent spelling to one A-label form", () => {
  const spellings = [
    "example.com",
    "EXAMPLE.COM",
    "example.com.",
    "ｅｘａｍｐｌｅ．ｃｏｍ", // fullwidth letters and fullwidth full stop
    "exam\u00adple.com", // soft hyphen
    "exa\u200bmple.com".replace("\u200b", ""), // (control: plain)
    "Ｅxample.com",
  ];
  for (const s of spellings) assert.equal(canonicalDomain(s), "example.com", s);
  assert.equal(canonicalDomain("Bücher.Example"), "xn--bcher-kva.example");
  assert.equal(canonicalDomain("xn--BCHER-kva.example"), "xn--bcher-kva.example");
  assert.equal(canonicalDomain("bu\u0308cher.example"), "xn--bcher-kva.example", "NFC normalisation");
});

Deno.test("canonicalDomain keeps address literals and refuses broken A-labels", () => {
  assert.equal(canonicalDomain("[192.0.2.1]"), "[192.0.2.1]");
  assert.equal(canonicalDomain("[IPv6:2001:DB8::1]"), "[IPv6:2001:DB8::1]", "literals stay as written");
  assert.equal(canonicalDomain("xn--zz.example"), "");
  assert.equal(canonicalDomain(""), "");
});

Deno.test("canonicalAddress keeps the local part byte for byte", () => {
  const r = canonicalAddress("Jo.Ünï+x@ＢÜCHER.example");
  assert.ok(r.ok);
  assert.equal(r.address, "Jo.Ünï+x@xn--bcher-kva.example");
  assert.equal(r.local, "Jo.Ünï+x");
  assert.equal(r.literal, false);
  assert.deepEqual(canonicalAddress("nodomain"), { ok: false, reason: "no domain" });
  assert.equal(canonicalAddress("a@xn--zz.example").ok, false);
  const lit = canonicalAddress("x@[192.0.2.10]");
  assert.ok(lit.ok && lit.literal);
});

Deno.test("unicodeDomain and domainOf round-trip", () => {
  assert.equal(unicodeDomain("xn--bcher-kva.example"), "bücher.example");
  assert.equal(domainOf("a@Ｂücher.example"), "xn--bcher-kva.example");
  assert.equal(isAscii("abc"), true);
  assert.equal(isAscii("äbc"), false);
});
