export { Plumtree, DEFAULT_PLUMTREE_CONFIG } from './plumtree';
export type { PlumtreeConfig, PlumtreeStats, PtIn, PtOut, PtEvent, PtDeliver, GossipAdmission } from './plumtree';
export { validatePlumtreeMessage, isPtMessage, makeMessageId, originOf, messageId, proofCheck, MAX_IHAVE_ENTRIES, MAX_KIND_LENGTH, MAX_MESSAGE_ID_LENGTH, MAX_ROUND } from './messages';
export type { PtMessage, PtGossip, PtIhave, PtGraft, PtPrune, PtTimer, BroadcastProof } from './messages';
