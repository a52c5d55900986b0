export { Membership, DEFAULT_MEMBERSHIP_CONFIG } from './membership';
export type { MembershipConfig, MembershipStats, MemberIn, MemberOut, MemberEvent } from './membership';
export {
  validateMemberUpdate,
  validateMemberMessage,
  isMemberMessage,
  approxSize,
  MEMBER_KIND,
  MAX_ACTIVE,
  MAX_META_BYTES,
  MAX_NICK_LENGTH,
  MAX_SYNC_RECORDS,
} from './messages';
export type { MemberInfo, MemberStatus, MemberUpdate, MemberRecord, MemberMessage, MemberTimer } from './messages';
