/**
 * Queue state: record types, the QueueStore contract and its two backends, and the
 * submitter, the one way into the queue.
 * @module
 */
export type {
  AttemptRecord,
  ClientInfo,
  MessageStatus,
  NotifyValue,
  Priority,
  QueueFilter,
  QueueRecord,
  RecipientState,
  RecipientStatus,
} from "./types.ts";
export { PRIORITIES, SCHEDULED_STATUSES } from "./types.ts";
export {
  type ClaimOptions,
  type DeliveryMark,
  emptyCounts,
  LAZY_WRITE_MS,
  matchesFilter,
  type OutboxEntry,
  type QueueStore,
  QueueStoreError,
  type StateEntry,
  type StateValue,
} from "./store.ts";
export type { QueueStats } from "./index_cache.ts";
export { openKvStore } from "./kv_store.ts";
export { openFileStore } from "./file_store.ts";
export { openQueueStore } from "./open.ts";
export { recoverQueue, type RecoveryReport } from "./recovery.ts";
export {
  createSubmitter,
  newQueueRecord,
  type QueuedListener,
  type SpooledData,
  type SubmitEnvelope,
  SubmitError,
  type SubmitErrorCode,
  type SubmitInput,
  type Submitter,
  type SubmitterOptions,
} from "./submit.ts";
export { modulePriority, PRIORITY_KEY, priorityOf } from "./priority.ts";
