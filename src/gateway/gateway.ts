import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { listContracts, suspendContract } from '../contracts/contracts.js';
import { appendAudit, systemActor, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';
import { queueMisuseNotices } from '../notify/misuse-notice.js';
import { GatewayEventRecorder } from './events.js';
import { compileOriginPolicy, CountryLookup, type OriginPolicy } from './geo/index.js';
import { MisuseDetector, type MisuseFinding } from './misuse/index.js';
import { AdmissionController, type AdmissionRequest } from './priority/index.js';
import { GatewayConfigError, type GatewaySettings } from './settings.js';
import { IDS_CLASSES, IdsEngine, type IdsClass } from './ids/index.js';
import { SourceConcurrency } from './priority/source-concurrency.js';
import { SourceRateMonitor } from './rate.js';

/** How often an instance reads the shared emergency declaration (R13.1). */
const EMERGENCY_SYNC_MS = 5_000;

/** Paths only the provider's staff use: kept answerable under congestion. */
const PROVIDER_PATHS = ['/api/v1/gateway', '/api/v1/backups', '/api/v1/audit', '/api/v1/operators', '/api/v1/data-deletion-due'];

/** The ingress chain's parts, built once per instance (R4.1, R11.1③, R12.2, R13.1). */
export class Gateway {
  readonly ids: IdsEngine;
  readonly rates: SourceRateMonitor;
  readonly events: GatewayEventRecorder;
  readonly misuse: MisuseDetector;
  readonly admission: AdmissionController;
  readonly sourceConcurrency: SourceConcurrency;
  #emergencySync: NodeJS.Timeout | undefined;

  private constructor(
    readonly settings: GatewaySettings,
    readonly geo: CountryLookup,
    readonly origin: OriginPolicy,
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.events = new GatewayEventRecorder(db, clock, logger);
    this.ids = IdsEngine.fromFile(settings.idsRulesPath ?? undefined);
    for (const [cls, mode] of Object.entries(settings.idsModes)) {
      if (!(IDS_CLASSES as readonly string[]).includes(cls)) throw new GatewayConfigError(`HOKAN_IDS_MODES: unknown IDS class "${cls}" (known: ${IDS_CLASSES.join(', ')})`);
      this.ids.setMode(cls as IdsClass, mode);
    }
    this.rates = new SourceRateMonitor(clock, settings.rateLimitPerSecond);
    this.misuse = new MisuseDetector(clock, { actions: settings.misuseActions });
    const priority = settings.priorityPaths;
    this.sourceConcurrency = new SourceConcurrency(settings.maxConcurrentPerSource);
    this.admission = new AdmissionController({
      maxConcurrent: settings.maxConcurrent,
      latencyThresholdMs: settings.latencyThresholdMs,
      // Priority requests wait up to this long for a slot instead of failing on a momentary peak.
      maxQueueMs: 5000,
      clock,
      classes: [
        // R13.1: communications urgent for the public interest (the Software's emergency care endpoints)
        // first. The reserve must cover their usual concurrency plus its spread (decision 0014).
        { name: 'emergency_care', reservedSlots: Math.max(1, Math.floor(settings.maxConcurrent * 0.3)), match: (r: AdmissionRequest) => priority.some((p) => r.path.startsWith(p)) },
        // The provider's own operations keep working while customers' traffic is shed… (classified
        // by path: admission runs before authentication, where who is calling is not yet known)
        { name: 'provider_operations', reservedSlots: Math.max(1, Math.floor(settings.maxConcurrent * 0.05)), match: (r: AdmissionRequest) => PROVIDER_PATHS.some((p) => r.path.startsWith(p)) },
        // …including signing in to manage the emergency.
        { name: 'sign_in', reservedSlots: 2, match: (r: AdmissionRequest) => r.path === '/api/v1/auth/login' },
      ],
    });
  }

  static async create(settings: GatewaySettings, db: Db, clock: Clock, logger: Logger): Promise<Gateway> {
    const geo = await CountryLookup.open(settings.geoDbPath ? { path: settings.geoDbPath } : {});
    const origin = compileOriginPolicy({ allowCidrs: settings.allowCidrs, unknownAllowed: settings.unknownLocationAllowed });
    return new Gateway(settings, geo, origin, db, clock, logger);
  }

  start(): void {
    this.events.start();
    // R13.1: a declaration made on another instance reaches this one within the interval.
    const sync = () => void this.syncEmergency().catch((err: unknown) => this.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'gateway: reading the emergency declaration failed'));
    sync();
    this.#emergencySync ??= setInterval(sync, EMERGENCY_SYNC_MS);
    this.#emergencySync.unref();
  }

  async stop(): Promise<void> {
    if (this.#emergencySync) clearInterval(this.#emergencySync);
    this.#emergencySync = undefined;
    await this.events.stop();
  }

  /**
   * Declares or ends an emergency (R13.1) for every instance: stored with its audit entry, applied
   * here at once, and by the other instances at their next reading (decision 0014). Kept in memory
   * only, it held on the one instance that took the request, and was lost on its restart.
   */
  async setEmergency(on: boolean, reason: string, actor: Actor): Promise<ReturnType<AdmissionController['declareEmergency']>> {
    const now = this.clock.now();
    const current = await this.db.selectFrom('gateway_emergency').select(['active', 'since']).where('id', '=', 1).executeTakeFirst();
    const since = on ? (current?.active && current.since ? current.since : now) : null;
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('gateway_emergency')
        .values({ id: 1, active: on, reason: on ? reason : null, since, changed_at: now, changed_by: actor.label })
        .onConflict((oc) => oc.column('id').doUpdateSet({ active: on, reason: on ? reason : null, since, changed_at: now, changed_by: actor.label }))
        .execute();
      await appendAudit(trx, this.clock, { actor, action: on ? 'gateway.emergency_declared' : 'gateway.emergency_ended', subjectType: 'gateway', subjectId: 'emergency', reason });
    });
    return this.admission.declareEmergency(on, reason, since?.toISOString());
  }

  /** Applies the stored declaration to this instance's admission when it differs. */
  async syncEmergency(): Promise<void> {
    const row = await this.db.selectFrom('gateway_emergency').selectAll().where('id', '=', 1).executeTakeFirst();
    if (!row) return;
    const mine = this.admission.stats().emergency;
    const since = row.since?.toISOString() ?? null;
    if (mine.on === row.active && mine.reason === row.reason && mine.since === since) return;
    this.admission.declareEmergency(row.active, row.reason ?? '', since ?? undefined);
  }

  /**
   * Acts on misuse findings per the provider's policy: the credential is locked, the customer
   * flagged for review, or suspended (R11.1③). Every finding is recorded; flags are what the
   * customer's admins see (GET /customers/{id}/misuse-flags).
   */
  async applyMisuseFindings(findings: MisuseFinding[]): Promise<void> {
    for (const f of findings) {
      let customerId = f.customerId ?? null;
      if (!customerId && f.loginId) {
        const user = await this.db.selectFrom('users').select('customer_id').where('login_id', '=', f.loginId).executeTakeFirst();
        customerId = user?.customer_id ?? null;
      }
      this.events.record({ kind: 'misuse', class: f.kind, action: f.action, sourceIp: f.sourceIp, customerId, credentialId: f.credentialId ?? f.loginId ?? null, details: { detail: f.detail, related: f.related ?? [] } });
      this.logger.warn({ finding: f }, 'misuse of credentials suspected');
      const now = this.clock.now();
      if (f.credentialId && (f.action === 'lock_credential' || f.action === 'suspend_customer')) {
        await this.db.updateTable('api_tokens').set({ locked_at: now, locked_reason: `${f.kind}: ${f.detail}`.slice(0, 500) }).where('id', '=', f.credentialId).where('locked_at', 'is', null).execute();
        // A person's credential: end every session it holds; sign-in is locked by the detector.
        await this.db.deleteFrom('sessions').where('user_id', '=', f.credentialId).execute().catch(() => undefined);
      }
      if (!customerId) continue;
      const flagId = randomUUID();
      const flaggedCustomer = customerId;
      // The flag and the notices to the customer's admins commit together (sent later by notify.deliver).
      await this.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('misuse_flags')
          .values({ id: flagId, customer_id: flaggedCustomer, credential_id: f.credentialId ?? f.loginId ?? null, kind: f.kind, action: f.action, detail: f.detail, source_ip: f.sourceIp, created_at: now, reviewed_at: null, reviewed_by: null })
          .execute();
        const notices = await queueMisuseNotices(trx, this.clock, { flagId, customerId: flaggedCustomer, kind: f.kind, action: f.action, detail: f.detail, at: now });
        if (notices.skippedUserIds.length > 0) this.logger.warn({ customerId: flaggedCustomer, userIds: notices.skippedUserIds }, 'misuse notice not queued: no valid e-mail address');
      });
      if (f.action === 'suspend_customer') {
        const actor = systemActor('gateway misuse policy');
        for (const c of await listContracts(this.db, { customerId, status: 'active' })) {
          await suspendContract(this.db, this.clock, actor, c.id, { reason: 'credential_misuse', note: `${f.kind}: ${f.detail}` }).catch((err: unknown) => this.logger.error({ err }, 'suspension after misuse failed'));
        }
      } else {
        await this.db.transaction().execute((trx) =>
          appendAudit(trx, this.clock, { actor: systemActor('gateway misuse policy'), action: 'customer.misuse_flagged', subjectType: 'customer', subjectId: customerId, customerId, reason: f.detail, details: { kind: f.kind, action: f.action } }),
        );
      }
    }
  }
}
