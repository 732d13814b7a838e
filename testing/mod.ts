/**
 * Helpers shared by tests/ and bench/: the raw SMTP client, child processes, the
 * daemon under test, empathctl, the spool read from outside, temporary dirs and files,
 * the fault-injecting sink and the fault and crash-loop scenarios. Neither tests/ nor
 * bench/ imports the other.
 * @module
 */
export { type Reply, sendMessage, SmtpClient, SmtpClientError, type SmtpClientOptions } from "./smtp_client.ts";
export { type ManagedProcess, ProcessError, type ProcessOptions, startProcess } from "./process.ts";
export { freePort, waitListening } from "./net.ts";
export { CTL_PERMISSIONS, REPO, START_PERMISSIONS, taskPermissions } from "./repo.ts";
export { restartDaemon, runEmpath, startDaemon, type StartOptions, type TestDaemon } from "./daemon.ts";
export { ctl, ctlJson, type CtlRun, deferredTo, socketOf } from "./ctl.ts";
export { spooledIds, spooledMessages } from "./spool_reader.ts";
export { tempDir, tempFile, type TempPath } from "./temp.ts";
export { eventually } from "./poll.ts";
export * from "./fault_sink.ts";
export * from "./fault_run.ts";
export * from "./crash_loop.ts";
