export { MisuseDetector, sourceKey, type MisuseFinding, type MisuseStateSize, type SignInGate } from './detector.js';
export {
  DEFAULT_MISUSE_POLICY,
  MISUSE_ACTIONS,
  MISUSE_FINDING_KINDS,
  misusePolicy,
  type MisuseAction,
  type MisuseFindingKind,
  type MisusePolicy,
  type MisusePolicyInput,
} from './policy.js';
export { BoundedMap } from './bounded-map.js';
