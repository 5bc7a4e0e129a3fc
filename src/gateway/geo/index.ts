export {
  CountryLookup,
  GeoDatabaseError,
  DEFAULT_GEO_FILE,
  DEFAULT_GEO_PACKAGE,
  defaultGeoPackageDir,
  type CountryLookupInfo,
} from './country-lookup.js';
export { normalizeIp, type NormalizedIp } from './ip.js';
export {
  AbroadRefusedError,
  OriginPolicy,
  PRIVATE_NETWORKS,
  compileOriginPolicy,
  decideOrigin,
  isPrivateNetwork,
  parseCidr,
  refusalError,
  type CountrySource,
  type OriginDecision,
  type OriginPolicyOptions,
  type OriginReason,
  type ParsedCidr,
  type RefusalReason,
} from './japan-only.js';
export {
  GEO_UPDATE_ARGS,
  GeoUpdateError,
  findProjectRoot,
  installedGeoPackageVersion,
  updateGeoDatabase,
  type GeoUpdateOptions,
  type GeoUpdateResult,
} from './update.js';
