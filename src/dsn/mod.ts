/**
 * Delivery status notifications (RFC 3461/3464): building and deciding.
 * @module
 */
export { buildDsn, type DsnInput, type DsnRecipientReport, headerSection, statusOf } from "./build.ts";
export { type BackscatterCandidate, createDsnService, type DsnDeps, type DsnService } from "./service.ts";
