import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { hashPassword, loadUsers, UsersFileError, verifyPassword } from "../../src/smtp/users.ts";

async function withUsersFile<T>(content: string, fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "empath-users-" });
  try {
    const path = join(dir, "users.txt");
    await Deno.writeTextFile(path, content);
    return await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function loadError(content: string): Promise<{ err: UsersFileError; path: string }> {
  return await withUsersFile(content, async (path) => {
    const err = await loadUsers(path).then(() => assert.fail("expected loadUsers to throw"), (e) => e);
    assert.ok(err instanceof UsersFileError, String(err));
    return { err, path };
  });
}

const hashes = {
  alice: await hashPassword("alice's password"),
  bob: await hashPassword("hunter2"),
};

Deno.test("hashes in the scrypt$N$r$p$salt$key format with a 16-byte salt and 32-byte key", () => {
  const parts = hashes.alice.split("$");
  assert.deepEqual(parts.slice(0, 4), ["scrypt", "16384", "8", "1"]);
  const [, , , , salt, key] = parts;
  assert.ok(salt !== undefined && key !== undefined, hashes.alice);
  assert.equal(Buffer.from(salt, "base64").length, 16);
  assert.equal(Buffer.from(key, "base64").length, 32);
});

Deno.test("hashing the same password twice uses different salts", async () => {
  const again = await hashPassword("alice's password");
  assert.notEqual(again, hashes.alice);
  assert.equal(await verifyPassword("alice's password", again), true);
});

Deno.test("a hashed password verifies", async () => {
  assert.equal(await verifyPassword("alice's password", hashes.alice), true);
  const unicode = await hashPassword("pässwörd ✉ \u{1F4E8}");
  assert.equal(await verifyPassword("pässwörd ✉ \u{1F4E8}", unicode), true);
});

Deno.test("a wrong password does not verify", async () => {
  assert.equal(await verifyPassword("alice's passwore", hashes.alice), false);
  assert.equal(await verifyPassword("", hashes.alice), false);
  assert.equal(await verifyPassword("hunter2", hashes.alice), false);
});

Deno.test("a tampered hash does not verify", async () => {
  const [scheme, N, r, p, salt, key] = hashes.alice.split("$");
  assert.ok(salt !== undefined && key !== undefined, hashes.alice);
  const flip = (b64: string) => {
    const bytes = Buffer.from(b64, "base64");
    const first = bytes[0];
    assert.ok(first !== undefined, "a non-empty value");
    bytes[0] = first ^ 1;
    return bytes.toString("base64");
  };
  const tampered = [
    [scheme, N, r, p, flip(salt), key],
    [scheme, N, r, p, salt, flip(key)],
    [scheme, "8192", r, p, salt, key],
    [scheme, N, "4", p, salt, key],
    [scheme, N, r, "2", salt, key],
    // Four extra key bytes (a truncated key is a prefix of the same scrypt output, so still matches).
    [scheme, N, r, p, salt, Buffer.concat([Buffer.from(key, "base64"), Buffer.alloc(4)]).toString("base64")],
  ];
  for (const parts of tampered) assert.equal(await verifyPassword("alice's password", parts.join("$")), false);
});

Deno.test("a malformed hash does not verify and does not throw", async () => {
  const [, , , , salt, key] = hashes.alice.split("$");
  assert.ok(salt !== undefined && key !== undefined, hashes.alice);
  for (
    const hash of [
      "",
      "plain",
      `bcrypt$16384$8$1$${salt}$${key}`,
      `scrypt$16384$8$1$${salt}`,
      `scrypt$16383$8$1$${salt}$${key}`, // not a power of two
      `scrypt$${2 ** 24}$8$1$${salt}$${key}`, // too much memory
      `scrypt$16384$0$1$${salt}$${key}`,
      `scrypt$16384$8$1$${salt}$not*base64`,
      `scrypt$16384$8$1$${salt}$${key}$extra`,
    ]
  ) {
    assert.equal(await verifyPassword("alice's password", hash), false, hash);
  }
});

Deno.test("loads users and verifies their passwords", async () => {
  await withUsersFile(`alice:${hashes.alice}\nbob:${hashes.bob}\n`, async (path) => {
    const users = await loadUsers(path);
    assert.equal(users.size, 2);
    assert.equal(await users.verify("alice", "alice's password"), true);
    assert.equal(await users.verify("bob", "hunter2"), true);
    assert.equal(await users.verify("bob", "alice's password"), false);
  });
});

Deno.test("skips comments and blank lines and accepts CRLF line ends", async () => {
  const content = [
    "# submission users",
    "",
    "   ",
    `alice:${hashes.alice}`,
    "  # indented comment",
    "\t",
    `bob:${hashes.bob}`,
    "",
  ].join("\r\n");
  await withUsersFile(content, async (path) => {
    const users = await loadUsers(path);
    assert.equal(users.size, 2);
    assert.equal(await users.verify("bob", "hunter2"), true);
  });
});

Deno.test("an empty file or one with only comments has no users", async () => {
  for (const content of ["", "# nobody yet\n\n"]) {
    await withUsersFile(content, async (path) => {
      const users = await loadUsers(path);
      assert.equal(users.size, 0);
      assert.equal(await users.verify("alice", "alice's password"), false);
    });
  }
});

Deno.test("an unknown user does not verify, even with another user's password", async () => {
  await withUsersFile(`alice:${hashes.alice}\n`, async (path) => {
    const users = await loadUsers(path);
    assert.equal(await users.verify("mallory", "alice's password"), false);
    assert.equal(await users.verify("", ""), false);
    assert.equal(await users.verify("__proto__", "x"), false);
    assert.equal(await users.verify("constructor", "x"), false);
  });
});

Deno.test("an unknown user takes about as long to reject as a known one", async () => {
  await withUsersFile(`alice:${hashes.alice}\n`, async (path) => {
    const users = await loadUsers(path);
    const time = async (user: string) => {
      const start = performance.now();
      await users.verify(user, "wrong");
      return performance.now() - start;
    };
    await time("alice"); // warm up
    const known = await time("alice");
    const unknown = await time("nobody");
    // An unknown user must still pay for one scrypt, not return instantly.
    assert.ok(unknown > known / 4, `known ${known.toFixed(1)} ms, unknown ${unknown.toFixed(1)} ms`);
  });
});

Deno.test("usernames are compared case-sensitively", async () => {
  await withUsersFile(`Alice:${hashes.alice}\n`, async (path) => {
    const users = await loadUsers(path);
    assert.equal(await users.verify("Alice", "alice's password"), true);
    assert.equal(await users.verify("alice", "alice's password"), false);
    assert.equal(await users.verify("ALICE", "alice's password"), false);
  });
});

Deno.test("usernames may contain @ and dots", async () => {
  await withUsersFile(`alice@example.com:${hashes.alice}\n`, async (path) => {
    const users = await loadUsers(path);
    assert.equal(await users.verify("alice@example.com", "alice's password"), true);
  });
});

Deno.test("each malformed line is reported with the file, its line number and the expected form", async () => {
  const [, , , , salt, key] = hashes.alice.split("$");
  assert.ok(salt !== undefined && key !== undefined, hashes.alice);
  const bad: [string, RegExp][] = [
    ["alice", /expected "username:scrypt\$N\$r\$p\$salt\$key"$/],
    [`alice ${hashes.alice}`, /expected "username:scrypt\$N\$r\$p\$salt\$key"$/],
    [`:${hashes.alice}`, /non-empty username/],
    [`al ice:${hashes.alice}`, /no spaces or control characters/],
    ["alice:", /a hash of the form "scrypt\$N\$r\$p\$salt\$key"/],
    ["alice:hunter2", /a hash of the form/],
    [`alice:bcrypt$16384$8$1$${salt}$${key}`, /a hash of the form/],
    [`alice:scrypt$16384$8$1$${salt}$${key}$x`, /a hash of the form/],
    [`alice:scrypt$1000$8$1$${salt}$${key}`, /N to be a power of two/],
    [`alice:scrypt$016384$8$1$${salt}$${key}`, /N to be a power of two/],
    [`alice:scrypt$16384$0$1$${salt}$${key}`, /r from 1 to/],
    [`alice:scrypt$16384$8$99$${salt}$${key}`, /p from 1 to/],
    [`alice:scrypt$1048576$32$16$${salt}$${key}`, /at most 256 MiB/],
    [`alice:scrypt$16384$8$1$AAAA$${key}`, /a salt of 8 to 64 bytes/],
    [`alice:scrypt$16384$8$1$${salt}$%%%%`, /a key of 16 to 64 bytes/],
    [`alice:scrypt$16384$8$1$${salt}$${Buffer.alloc(8).toString("base64")}`, /a key of 16 to 64 bytes/],
    // Non-canonical base64: the last character carries bits the decoder would silently drop.
    [`alice:scrypt$16384$8$1$${salt}$${"A".repeat(42)}B=`, /a key of 16 to 64 bytes/],
  ];
  for (const [line, pattern] of bad) {
    const content = `# users\n\nbob:${hashes.bob}\n${line}\ncarol:${hashes.bob}\n`;
    const { err, path } = await loadError(content);
    assert.equal(err.code, "USERS_FILE_INVALID");
    assert.equal(err.line, 4);
    assert.equal(err.path, path);
    assert.ok(err.message.startsWith(`${path} line 4: expected `), err.message);
    assert.match(err.message, pattern, line);
    assert.ok(!err.message.includes(key), "the message does not echo the key");
  }
});

Deno.test("a duplicate username is an error naming both lines", async () => {
  const { err, path } = await loadError(`alice:${hashes.alice}\n# again:\nalice:${hashes.bob}\n`);
  assert.equal(err.code, "USERS_FILE_INVALID");
  assert.equal(err.line, 3);
  assert.equal(err.message, `${path} line 3: duplicate user "alice" (already defined on line 1)`);
});

Deno.test("usernames differing only in case are distinct users", async () => {
  await withUsersFile(`alice:${hashes.alice}\nALICE:${hashes.bob}\n`, async (path) => {
    const users = await loadUsers(path);
    assert.equal(users.size, 2);
    assert.equal(await users.verify("ALICE", "hunter2"), true);
  });
});

Deno.test("a missing users file is a USERS_FILE_UNREADABLE error naming the path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-users-" });
  try {
    const path = join(dir, "missing.txt");
    await assert.rejects(
      loadUsers(path),
      (e: unknown) => e instanceof UsersFileError && e.code === "USERS_FILE_UNREADABLE" && e.message.startsWith(path),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
