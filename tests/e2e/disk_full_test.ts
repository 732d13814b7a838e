/**
 * The spool on a full filesystem: the data dir is a small tmpfs (or, without the
 * right to mount one, a loop-mounted ext4 image). Filled to the last byte, Empath
 * answers `452 4.3.1` at the end of DATA, small and large messages alike, keeps the
 * session and the daemon running and says "not ready"; once space returns, the next
 * message gets 250 and is delivered. A second test remounts the filesystem
 * read-only: `451 4.3.0`, and back to 250 after a read-write remount.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ctl, ctlJson } from "../../testing/ctl.ts";
import { startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { type FaultSink, startFaultSink } from "../../testing/fault_sink.ts";
import { sendMessage, SmtpClient } from "../../testing/smtp_client.ts";
import { spooledIds } from "../../testing/spool_reader.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const dec = new TextDecoder();
    return { code: o.code, out: (dec.decode(o.stdout) + dec.decode(o.stderr)).trim() };
  } catch (err) {
    return { code: 127, out: String(err) }; // not installed
  }
}

/** A small filesystem mounted on `dir`: tmpfs, else an ext4 image on a loop device. Never skips. */
async function mountSmallFs(dir: string, mib: number): Promise<{ kind: string; unmount(): Promise<void> }> {
  await Deno.mkdir(dir, { recursive: true });
  const tmpfs = await run("mount", ["-t", "tmpfs", "-o", `size=${mib}m,mode=0700`, "tmpfs", dir]);
  const unmount = async (extra?: () => Promise<void>) => {
    try {
      for (let i = 0; i < 20; i++) {
        if ((await run("umount", [dir])).code === 0) return;
        await sleep(100); // a process that just died may still hold a file for a moment
      }
      const lazy = await run("umount", ["-l", dir]);
      throw new Error(`could not unmount ${dir} (detached lazily: ${lazy.code === 0 ? "yes" : lazy.out})`);
    } finally {
      await extra?.();
    }
  };
  if (tmpfs.code === 0) return { kind: "tmpfs", unmount: () => unmount() };
  const image = `${dir}.img`;
  const steps: [string, string[]][] = [
    ["truncate", ["-s", `${mib}M`, image]],
    ["mkfs.ext4", ["-q", "-F", "-m", "0", image]],
    ["mount", ["-o", "loop", image, dir]],
  ];
  const errors = [`mount -t tmpfs: ${tmpfs.out}`];
  for (const [cmd, args] of steps) {
    const r = await run(cmd, args);
    if (r.code !== 0) {
      errors.push(`${cmd} ${args.join(" ")}: ${r.out}`);
      await Deno.remove(image).catch(() => {});
      throw new Error(
        `disk-full test needs a small filesystem it can fill, and could not mount one (run as root with ` +
          `CAP_SYS_ADMIN, or with loop devices):\n  ${errors.join("\n  ")}`,
      );
    }
  }
  return { kind: "ext4 on loop", unmount: () => unmount(() => Deno.remove(image).catch(() => {})) };
}

/** Fills the filesystem holding `path` until writes fail with ENOSPC; returns the bytes written. */
async function fill(path: string): Promise<number> {
  const file = await Deno.open(path, { write: true, create: true });
  let total = 0;
  try {
    for (const size of [1 << 20, 4096, 512, 1]) {
      const chunk = new Uint8Array(size).fill(0x78);
      while (true) {
        try {
          total += await file.write(chunk);
        } catch (err) {
          assert.match(String(err), /No space left|ENOSPC|os error 28/, "the filler stops at a full disk");
          break;
        }
      }
    }
    await file.sync().catch(() => {});
  } finally {
    file.close();
  }
  return total;
}

async function ready(d: TestDaemon): Promise<{ status: number; failing?: string[] }> {
  const r = await fetch(`http://127.0.0.1:${d.portOf("http")}/health/ready`);
  const body = await r.json().catch(() => ({}));
  return { status: r.status, failing: body.failing };
}

const message = (tag: string, bytes: number) =>
  `X-Test-Id: ${tag}\r\nSubject: ${tag}\r\n\r\n` + ("x".repeat(70) + "\r\n").repeat(Math.ceil(bytes / 72));

/** Starts a daemon whose data dir is a fresh small filesystem, delivering x.test to a sink. */
async function setup(mib: number, backend: "kv" | "file" = "kv") {
  const dir = await Deno.makeTempDir({ prefix: "empath-diskfull-" });
  const mount = await mountSmallFs(join(dir, "var"), mib).catch(async (err) => {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  });
  let sink: FaultSink | undefined;
  let d: TestDaemon | undefined;
  try {
    sink = await startFaultSink();
    d = await startDaemon({
      dir,
      logLevel: "info",
      toml:
        `[queue]\nbackend = "${backend}"\n[delivery]\nenabled = true\n[delivery.retry]\nbase_delay = "1s"\njitter = 0\n` +
        `[delivery.domains."x.test"]\nmx_override = "127.0.0.1:${sink.port}"\n`,
    });
  } catch (err) {
    await sink?.stop();
    await mount.unmount();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
  const delivered = async (tag: string) => {
    const deadline = Date.now() + 15_000;
    while (!(await sink!.messages()).some((m) => m.test_id === tag)) {
      assert.ok(Date.now() < deadline, `${tag} delivered within 15 s`);
      await sleep(50);
    }
  };
  return {
    d,
    sink,
    mount,
    delivered,
    async teardown() {
      await d!.kill();
      await sink!.stop();
      try {
        await mount.unmount();
      } finally {
        await d!.cleanup();
      }
    },
  };
}

for (const backend of ["kv", "file"] as const) {
  Deno.test(`a full spool filesystem answers 452 4.3.1, the daemon keeps running, and mail flows when space returns (${backend})`, async () => {
    const { d, mount, delivered, teardown } = await setup(16, backend);
    try {
      console.log(`data dir on ${mount.kind}, queue backend ${backend}`);
      const first = await sendMessage(d.port, "a@src.test", ["b@x.test"], message("before", 2000));
      assert.equal(first.code, 250, first.text);
      await delivered("before");

      const filler = join(d.dataDir, "filler");
      const filled = await fill(filler);
      assert.ok(filled > 1 << 20, `filled ${filled} bytes`);

      // A tiny message (its data fits the segment's last page; the queue record does not), a
      // small one (segment append) and a large one (its own file) are refused alike, at the end
      // of DATA, and the session stays usable.
      const c = await SmtpClient.connect(d.port);
      try {
        await c.reply();
        await c.cmd("EHLO full.test");
        for (const [tag, size] of [["tiny", 10], ["small", 20_000], ["large", 400_000]] as const) {
          assert.equal((await c.cmd("MAIL FROM:<a@src.test>")).code, 250);
          assert.equal((await c.cmd("RCPT TO:<b@x.test>")).code, 250);
          assert.equal((await c.cmd("DATA")).code, 354);
          await c.send(message(tag, size));
          const r = await c.cmd(".");
          assert.equal(r.code, 452, `${tag}: ${r.text}`);
          assert.match(r.text, /^452 4\.3\.1 /, tag);
        }
        assert.equal((await c.cmd("NOOP")).code, 250, "the session goes on");
      } finally {
        c.close();
      }
      await d.waitForLog(/not accepted.*(Insufficient system storage|4\.3\.1)/);
      assert.equal((await ctl(d, ["system", "ping"])).code, 0, "the daemon is alive");
      // The refused writes gave back what they had taken (a removed segment frees its pages): top up.
      await fill(`${filler}-2`);
      const down = await ready(d);
      assert.equal(down.status, 503, "not ready while the spool cannot be written");
      assert.ok(down.failing?.includes("spool"), JSON.stringify(down));

      await Deno.remove(filler);
      await Deno.remove(`${filler}-2`);
      const after = await sendMessage(d.port, "a@src.test", ["b@x.test"], message("after", 20_000));
      assert.equal(after.code, 250, after.text);
      await delivered("after");
      const bigAfter = await sendMessage(d.port, "a@src.test", ["b@x.test"], message("large-after", 400_000));
      assert.equal(bigAfter.code, 250, bigAfter.text);
      await delivered("large-after");
      assert.equal((await ready(d)).status, 200, "ready again");

      // Nothing refused was kept: the queue and the spool end empty.
      const deadline = Date.now() + 10_000;
      while (
        (await ctlJson<{ total: number }>(d, ["queue", "stats"])).total !== 0 || (await spooledIds(d.dataDir)).length
      ) {
        assert.ok(Date.now() < deadline, "queue and spool empty");
        await sleep(100);
      }
      assert.equal(await d.stop(), 0);
    } finally {
      await teardown();
    }
  });
}

async function chattr(flag: "+i" | "-i", paths: string[]) {
  if (paths.length === 0) return;
  const r = await run("chattr", [flag, ...paths]);
  assert.equal(r.code, 0, `chattr ${flag} ${paths.join(" ")}: ${r.out}`);
}

Deno.test("a spool that refuses writes answers 451 4.3.0, the daemon keeps running, and mail flows once it is writable", async () => {
  // A read-only remount is refused by Linux while the daemon holds files open for writing
  // ("mount point is busy"), so the spool is made immutable instead (chattr +i: even root's
  // writes fail, through open descriptors too): the same refusal a read-only disk gives.
  const sink = await startFaultSink();
  const d = await startDaemon({
    logLevel: "info",
    toml: `[delivery]\nenabled = true\n[delivery.domains."x.test"]\nmx_override = "127.0.0.1:${sink.port}"\n`,
  });
  const spool = join(d.dataDir, "spool");
  let locked: string[] = [];
  try {
    assert.equal((await sendMessage(d.port, "a@src.test", ["b@x.test"], message("before", 2000))).code, 250);
    const segs = (await Array.fromAsync(Deno.readDir(join(spool, "seg")))).map((e) => join(spool, "seg", e.name));
    locked = [...segs, join(spool, "seg"), join(spool, "data")];
    await chattr("+i", locked);
    for (const [tag, size] of [["small", 2000], ["large", 400_000]] as const) {
      const r = await sendMessage(d.port, "a@src.test", ["b@x.test"], message(tag, size));
      assert.equal(r.code, 451, `${tag}: ${r.text}`);
      assert.match(r.text, /^451 4\.3\.0 /, tag);
    }
    assert.equal((await ctl(d, ["system", "ping"])).code, 0, "the daemon is alive");
    assert.equal((await ready(d)).status, 503);
    await chattr("-i", locked);
    locked = [];
    const r = await sendMessage(d.port, "a@src.test", ["b@x.test"], message("after", 2000));
    assert.equal(r.code, 250, r.text);
    const deadline = Date.now() + 15_000;
    while (!(await sink.messages()).some((m) => m.test_id === "after")) {
      assert.ok(Date.now() < deadline, "delivered after the spool is writable again");
      await sleep(50);
    }
    assert.deepEqual((await sink.messages()).map((m) => m.test_id), ["before", "after"]);
    assert.equal(await d.stop(), 0);
  } finally {
    await chattr("-i", locked).catch(() => {});
    await d.kill();
    await d.cleanup();
    await sink.stop();
  }
});
