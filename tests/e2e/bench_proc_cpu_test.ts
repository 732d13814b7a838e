/**
 * bench/lib/proc_cpu.ts: a process group's CPU includes children that lived and died
 * between two samples (their time arrives through the parent's cutime/cstime).
 */
import assert from "node:assert/strict";
import { CpuGroups } from "../../bench/lib/proc_cpu.ts";

Deno.test({
  name: "CpuGroups counts short-lived children of a group through cutime/cstime",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // Five busy children one after the other, each shorter than the 500 ms sampling interval,
    // then the parent waits on stdin so that it is still in the group when sampling stops.
    const busy = "i=0; while [ $i -lt 60000 ]; do i=$((i+1)); done";
    const script = `for n in 1 2 3 4 5; do sh -c '${busy}'; done; echo done; read x`;
    const whole = await CpuGroups.start({ self: [Deno.pid] });
    const child = new Deno.Command("sh", { args: ["-c", script], stdin: "piped", stdout: "piped" }).spawn();
    const group = await CpuGroups.start({ work: [child.pid] }, 500);
    const reader = child.stdout.getReader();
    let out = "";
    while (!out.includes("done")) out += new TextDecoder().decode((await reader.read()).value ?? new Uint8Array());
    const work = (await group.stop()).groups.work!;
    await child.stdin.close();
    reader.releaseLock();
    await child.stdout.cancel();
    await child.status;
    // Everything the shell and its children used, once the shell was reaped by this process.
    const total = (await whole.stop()).groups.self!.reapedMs;
    assert(work.reapedMs > 0, `children's time arrived through cutime: ${JSON.stringify(work)}`);
    assert(work.ms > 0.5 * total, `group ${work.ms} ms of ${total} ms in all`);
    // The shell's own start-up before the group's first sample is the only part missed (a few ticks).
    assert(work.ms <= total + 10 && total - work.ms <= 50, `group ${work.ms} ms, in all ${total} ms`);
  },
});
