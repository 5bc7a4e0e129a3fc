import type { ColumnType, Generated } from 'kysely';

/**
 * The whole database as Kysely sees it. Each domain owns its tables (named in the comments);
 * another domain reaches them only through that domain's exported functions.
 */
type Timestamp = ColumnType<Date, Date | string, Date | string>;
/** PostgreSQL `date`, kept as 'YYYY-MM-DD' text so no time zone can shift it. */
type CalendarDate = string;
type Json = ColumnType<unknown, string, string>;

// accounts
export interface UsersTable {
  id: string;
  kind: 'operator' | 'customer';
  customer_id: string | null;
  login_id: string;
  display_name: string;
  email: string;
  roles: string[];
  password_hash: string;
  disabled_at: Timestamp | null;
  created_at: Timestamp;
  totp_secret: string | null;
  totp_last_step: ColumnType<string | null, number | null, number | null>;
}

export interface SessionsTable {
  token_hash: string;
  user_id: string;
  created_at: Timestamp;
  expires_at: Timestamp;
}

export interface ApiTokensTable {
  id: string;
  customer_id: string;
  name: string;
  secret_hash: string;
  created_by: string;
  created_at: Timestamp;
  revoked_at: Timestamp | null;
  last_used_at: Timestamp | null;
  locked_at: Timestamp | null;
  locked_reason: string | null;
}

// contracts
export interface CustomersTable {
  id: string;
  code: string;
  name: string;
  contact_email: string;
  created_at: Timestamp;
}

export interface ContractsTable {
  id: string;
  customer_id: string;
  contract_number: string;
  status: 'active' | 'suspended' | 'ended';
  term_start: CalendarDate;
  term_end: CalendarDate;
  /** null until the billing role sets it */
  monthly_fee_yen: number | null;
  system_use_contract_number: string;
  system_use_contract_end: CalendarDate | null;
  support_contract_number: string;
  support_contract_end: CalendarDate | null;
  suspension_reason: string | null;
  suspension_note: string | null;
  suspended_at: Timestamp | null;
  scheduled_end_at: Timestamp | null;
  scheduled_end_reason: string | null;
  ended_at: Timestamp | null;
  end_reason: string | null;
  end_note: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  version: number;
}

export interface TerminationNoticesTable {
  id: string;
  contract_id: string;
  received_at: Timestamp;
  end_date: CalendarDate;
  earliest_end_date: CalendarDate;
  no_refund: boolean;
  filed_by: string;
  note: string;
}

export interface BreachNoticesTable {
  id: string;
  contract_id: string;
  issued_at: Timestamp;
  cure_deadline: Timestamp;
  description: string;
  issued_by: string;
  cured_at: Timestamp | null;
  cured_note: string | null;
}

export interface DataDeletionDueTable {
  id: string;
  contract_id: string;
  customer_id: string;
  contract_ended_at: Timestamp;
  created_at: Timestamp;
  consumed_at: Timestamp | null;
  consumed_by: string | null;
  purge_progress: ColumnType<unknown, string | null, string | null>;
}

// core: audit
export interface AuditLogTable {
  seq: Generated<string>;
  at: Timestamp;
  actor_kind: string;
  actor_id: string | null;
  actor_label: string;
  action: string;
  subject_type: string;
  subject_id: string;
  customer_id: string | null;
  reason: string | null;
  details: Json;
  prev_hash: string;
  hash: string;
}

// core: jobs
export interface JobsTable {
  id: string;
  queue: string;
  payload: Json;
  state: 'queued' | 'active' | 'completed' | 'failed';
  singleton_key: string | null;
  run_at: Timestamp;
  attempts: number;
  max_attempts: number;
  locked_by: string | null;
  locked_until: Timestamp | null;
  last_error: string | null;
  created_at: Timestamp;
  completed_at: Timestamp | null;
}

// data
export interface DataRecordsTable {
  customer_id: string;
  collection: string;
  id: string;
  version: number;
  data: Json;
  /** md5 of the JSON text, kept by the database (migration 0017); a restore compares it. */
  data_digest: Generated<string>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface OrphanBlobCandidatesTable {
  blob_key: string;
  customer_id: string;
  first_seen: Timestamp;
}

export interface DataFilesTable {
  customer_id: string;
  id: string;
  name: string;
  content_type: string;
  size: ColumnType<string, number | string, number | string>;
  sha256: string;
  blob_key: string;
  created_at: Timestamp;
}

export interface DataAccessLogTable {
  seq: Generated<string>;
  customer_id: string;
  at: Timestamp;
  actor_kind: string;
  actor_id: string | null;
  actor_label: string;
  source_ip: string | null;
  operation: string;
  target_type: string;
  collection: string | null;
  target_id: string | null;
  prev_hash: string;
  hash: string;
}

// backup
export interface CustomerKeysTable {
  customer_id: string;
  wrapped_key: string | null;
  key_fingerprint: string;
  master_key_fingerprint: string;
  created_at: Timestamp;
  destroyed_at: Timestamp | null;
}

export type BackupState = 'running' | 'good' | 'failed' | 'expired' | 'purged';
export type OffsiteState = 'pending' | 'copied' | 'failed' | 'skipped' | 'not_configured' | 'removed';

export interface BackupsTable {
  id: string;
  customer_id: string;
  generation: 'daily' | 'weekly' | 'manual';
  state: BackupState;
  started_at: Timestamp;
  finished_at: Timestamp | null;
  snapshot_records: number | null;
  snapshot_files: number | null;
  plain_bytes: ColumnType<string | null, number | null, number | null>;
  stored_bytes: ColumnType<string | null, number | null, number | null>;
  parts: Json;
  key_fingerprint: string;
  primary_target: string;
  retain_until: Timestamp;
  offsite_target: string | null;
  offsite_state: OffsiteState;
  offsite_copied_at: Timestamp | null;
  offsite_error: string | null;
  error: string | null;
  instance_id: string;
}

export interface BackupChecksTable {
  id: string;
  backup_id: string;
  kind: 'verify' | 'drill';
  target: 'primary' | 'offsite';
  started_at: Timestamp;
  finished_at: Timestamp;
  ok: boolean;
  detail: Json;
}

/** R10.4: a restore run as a job; its progress is what the console's progress page shows. */
export interface BackupRestoreJobsTable {
  id: string;
  backup_id: string;
  customer_id: string;
  from_target: 'primary' | 'offsite';
  state: 'queued' | 'running' | 'done' | 'failed';
  phase: 'manifest' | 'files' | 'records' | 'cleanup' | 'done' | null;
  done: number;
  total: number;
  records: number | null;
  files: number | null;
  error: string | null;
  /** The queue job that runs it, so a restore whose job ended without settling it can be found. */
  job_id: string | null;
  requested_by_kind: 'operator' | 'customer_user' | 'api_token' | 'system';
  requested_by_id: string | null;
  requested_by_label: string;
  created_at: Timestamp;
  started_at: Timestamp | null;
  finished_at: Timestamp | null;
}

export interface DeletionCertificatesTable {
  id: string;
  customer_id: string;
  issued_at: Timestamp;
  body: Json;
  sha256: string;
}

export interface BillableItemsTable {
  id: string;
  contract_id: string;
  customer_id: string;
  kind: string;
  description: string;
  amount_yen: number | null;
  created_at: Timestamp;
}

export interface MigrationRequestsTable {
  id: string;
  customer_id: string;
  requested_at: Timestamp;
  requested_by: string;
  note: string;
  state: 'requested' | 'produced' | 'delivered' | 'lapsed';
  package_key: string | null;
  package_sha256: string | null;
  package_size: ColumnType<string | null, number | null, number | null>;
  produced_at: Timestamp | null;
  delivered_at: Timestamp | null;
  billable_item_id: string | null;
}

// gateway
export interface GatewayEventsTable {
  id: Generated<string>;
  at: Timestamp;
  kind: 'abroad_refused' | 'ids' | 'misuse' | 'admission_rejected';
  class: string;
  rule_id: string | null;
  action: string;
  source_ip: string | null;
  country: string | null;
  customer_id: string | null;
  credential_id: string | null;
  method: string | null;
  path: string | null;
  sample: string | null;
  details: Json;
}

export interface MisuseFlagsTable {
  id: string;
  customer_id: string;
  credential_id: string | null;
  kind: string;
  action: string;
  detail: string;
  source_ip: string | null;
  created_at: Timestamp;
  reviewed_at: Timestamp | null;
  reviewed_by: string | null;
}

// incidents
export interface ServiceStopsTable {
  id: string;
  kind: 'planned' | 'emergency';
  reason: string;
  description: string;
  starts_at: Timestamp;
  /** planned: required; emergency: null until ended */
  ends_at: Timestamp | null;
  all_customers: boolean;
  announced_at: Timestamp | null;
  override_reason: string | null;
  ended_at: Timestamp | null;
  cancelled_at: Timestamp | null;
  created_by: string;
  created_at: Timestamp;
  /** R7.3: the incident behind an emergency stop (migration 0015). */
  incident_id: string | null;
}

export interface ServiceStopCustomersTable {
  stop_id: string;
  customer_id: string;
}

// notify
export interface OutboundEmailsTable {
  id: string;
  dedupe_key: string;
  to_address: string;
  subject: string;
  text_body: string;
  created_at: Timestamp;
  state: 'queued' | 'sent' | 'failed';
  attempts: number;
  next_attempt_at: Timestamp;
  last_error: string | null;
  sent_at: Timestamp | null;
  message_id: string | null;
  /** Set by queueEmails: the text is in outbound_email_bodies (shared by the rows of one notice); text_body is then ''. */
  body_id?: string | null;
}

export interface OutboundEmailBodiesTable {
  id: string;
  text_body: string;
  created_at: Timestamp;
}

export interface IncidentsTable {
  id: string;
  title: string;
  severity: 'critical' | 'major' | 'minor';
  cause: string | null;
  opened_by: string;
  occurred_at: Timestamp;
  detected_at: Timestamp;
  first_notice_at: Timestamp | null;
  recovered_at: Timestamp | null;
  recovery_notice_at: Timestamp | null;
  report_at: Timestamp | null;
  entirely_unusable: boolean;
  provider_fault: boolean;
  exclusion: string | null;
  all_customers: boolean;
  created_at: Timestamp;
}

export interface IncidentCustomersTable {
  incident_id: string;
  customer_id: string;
}

/** incidents: a possible leak, loss or damage of personal data (Decision 0020). */
export interface PersonalDataBreachesTable {
  id: string;
  incident_id: string;
  kinds: string[];
  status: 'suspected' | 'confirmed' | 'ruled_out';
  learned_at: Timestamp;
  began_at: Timestamp | null;
  unauthorised_purpose: boolean;
  cause: string;
  secondary_damage: string;
  countermeasures: string;
  contact: string;
  timeline: Json;
  created_by: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface PersonalDataBreachCustomersTable {
  breach_id: string;
  customer_id: string;
  learned_at: Timestamp;
  data_items: string[];
  people_count: number | null;
  people_estimated: boolean;
  sensitive: boolean;
  financial_risk: boolean;
  advanced_measures: boolean;
  protection_note: string;
  preliminary_at: Timestamp | null;
  preliminary_by: string | null;
  final_at: Timestamp | null;
  final_by: string | null;
}

// terms
export interface TermsVersionsTable {
  id: string;
  edition: string;
  effective_date: CalendarDate;
  title: string | null;
  /** The parsed document (TermsDocument in src/terms/parser.ts). */
  document: Json;
  source_text: string;
  source_sha256: string;
  state: 'draft' | 'published';
  published_at: Timestamp | null;
  published_by: string | null;
  created_by: string;
  created_at: Timestamp;
}

export interface TermsNoticesTable {
  id: string;
  channel: 'support_site' | 'support_guide';
  guide_edition: string | null;
  topic: string;
  title_ja: string;
  body_ja: string;
  title_en: string | null;
  body_en: string | null;
  effective_at: Timestamp;
  all_customers: boolean;
  state: 'draft' | 'published';
  published_at: Timestamp | null;
  published_by: string | null;
  created_by: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface TermsNoticeCustomersTable {
  notice_id: string;
  customer_id: string;
}

export interface TermsNotificationsTable {
  id: string;
  change_kind: 'terms_version' | 'notice';
  change_id: string;
  customer_id: string;
  channel: 'portal' | 'email';
  /** The e-mail address, or 'portal'. */
  recipient: string;
  recipient_roles: string[];
  outbox_email_id: string | null;
  notified_at: Timestamp;
}

export interface TermsConsultationsTable {
  id: string;
  customer_id: string;
  change_kind: 'terms_version' | 'notice';
  change_id: string;
  state: 'open' | 'closed';
  opened_by: string;
  opened_at: Timestamp;
  closed_at: Timestamp | null;
  closed_by: string | null;
  close_note: string | null;
}

export interface TermsConsultationMessagesTable {
  id: string;
  /** Insertion order (messages of one instant keep the order they were written in). */
  seq: Generated<string>;
  consultation_id: string;
  author_kind: 'customer_user' | 'operator';
  author_id: string;
  author_label: string;
  body: string;
  created_at: Timestamp;
}

// monitoring: hardware (R12.3①) and visual rounds (R12.3③)
export interface HardwareHostsTable {
  id: string;
  name: string;
  kind: 'agent' | 'self';
  token_hash: string | null;
  created_by: string;
  created_at: Timestamp;
  token_issued_at: Timestamp | null;
  last_seen_at: Timestamp | null;
  last_sample_at: Timestamp | null;
  retired_at: Timestamp | null;
}

export interface HardwareSamplesTable {
  host_id: string;
  at: Timestamp;
  received_at: Timestamp;
  metrics: Json;
}

export interface HardwareRulesTable {
  id: string;
  name: string;
  host_id: string | null;
  metric: string;
  target: string | null;
  comparison: '>' | '>=' | '<' | '<=';
  threshold: number;
  duration_seconds: number;
  severity: 'critical' | 'major' | 'minor' | 'warning';
  enabled: boolean;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: Timestamp | null;
}

export interface HardwareRuleStatesTable {
  rule_id: string;
  host_id: string;
  breach_since: Timestamp | null;
}

export interface HardwareAlertsTable {
  id: string;
  rule_id: string;
  host_id: string;
  severity: string;
  metric: string;
  value: number;
  started_at: Timestamp;
  raised_at: Timestamp;
  recovered_at: Timestamp | null;
  closed_reason: string | null;
  incident_id: string | null;
  incident_claimed_at: Timestamp | null;
}

export interface RoundChecklistsTable {
  id: string;
  name: string;
  interval_hours: number | null;
  current_version: number;
  created_at: Timestamp;
  retired_at: Timestamp | null;
}

export interface RoundChecklistVersionsTable {
  checklist_id: string;
  version: number;
  items: Json;
  created_by: string;
  created_at: Timestamp;
  note: string | null;
}

export interface RoundsTable {
  id: string;
  checklist_id: string;
  checklist_version: number;
  performed_by: string;
  performed_by_id: string | null;
  performed_at: Timestamp;
  recorded_at: Timestamp;
  results: Json;
  findings: number;
}

export interface MonitorsTable {
  id: string;
  name: string;
  kind: 'http' | 'tcp' | 'dns' | 'tls' | 'heartbeat' | 'database' | 'backup_freshness' | 'offsite_lag';
  target: Json;
  interval_s: number;
  retry_interval_s: number;
  timeout_ms: number;
  retries: number;
  recover_after: number;
  severity: 'critical' | 'major' | 'minor';
  component: string;
  all_customers: boolean;
  enabled: boolean;
  heartbeat_token_hash: string | null;
  state: 'unknown' | 'up' | 'down';
  fail_streak: number;
  ok_streak: number;
  streak_started_at: Timestamp | null;
  last_check_at: Timestamp | null;
  last_ok: boolean | null;
  last_latency_ms: number | null;
  last_error: string | null;
  last_beat_at: Timestamp | null;
  next_check_at: Timestamp;
  open_incident_id: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface MonitorCustomersTable {
  monitor_id: string;
  customer_id: string;
}

export interface MonitorResultsTable {
  monitor_id: string;
  checked_at: Timestamp;
  ok: boolean;
  latency_ms: number | null;
  error: string | null;
}

export interface DataExportJobsTable {
  id: string;
  customer_id: string;
  requested_by: string;
  requested_by_label: string;
  source_ip: string | null;
  state: 'queued' | 'running' | 'done' | 'failed';
  items_total: number;
  records_done: number;
  files_done: number;
  bytes: ColumnType<string, number | string, number | string>;
  blob_key: string | null;
  filename: string | null;
  sha256: string | null;
  error: string | null;
  created_at: Timestamp;
  started_at: Timestamp | null;
  finished_at: Timestamp | null;
  expires_at: Timestamp;
}

// notify (notices)
export interface NoticeContactsTable {
  id: string;
  customer_id: string;
  email: string;
  name: string;
  lang: 'ja' | 'en';
  created_at: Timestamp;
  created_by: string;
}

export interface StatusComponentsTable {
  key: string;
  name_ja: string;
  name_en: string;
  position: number;
  created_at: Timestamp;
}

export interface IncidentComponentsTable {
  incident_id: string;
  component_key: string;
}

export interface StopComponentsTable {
  stop_id: string;
  component_key: string;
}

export interface NoticePostsTable {
  id: string;
  incident_id: string | null;
  stop_id: string | null;
  stage: 'first' | 'update' | 'recovery' | 'report' | 'stop_planned' | 'stop_reminder' | 'stop_emergency';
  seq: number;
  subject_ja: string;
  subject_en: string;
  body_ja: string;
  body_en: string;
  public: boolean;
  posted_at: Timestamp;
  posted_by: string;
}

export interface NoticeRecipientsTable {
  post_id: string;
  customer_id: string | null;
  address: string;
  lang: 'ja' | 'en';
  source: 'contact' | 'customer' | 'admin' | 'subscriber';
  dedupe_key: string;
  queued_at: Timestamp;
}

export interface WebhooksTable {
  id: string;
  url: string;
  description: string;
  secret: string;
  active: boolean;
  created_at: Timestamp;
  created_by: string;
}

export interface WebhookDeliveriesTable {
  id: string;
  webhook_id: string;
  post_id: string;
  body: string;
  state: 'queued' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: Timestamp;
  last_status: number | null;
  last_error: string | null;
  delivered_at: Timestamp | null;
  created_at: Timestamp;
}

export interface StatusSubscribersTable {
  id: string;
  email: string;
  lang: 'ja' | 'en';
  confirm_token_hash: string;
  unsubscribe_token: string;
  created_at: Timestamp;
  confirmation_sent_at: Timestamp;
  confirmed_at: Timestamp | null;
  unsubscribed_at: Timestamp | null;
}

/** R13.1: the one row of the operator-declared emergency (migration 0019). */
export interface GatewayEmergencyTable {
  id: number;
  active: boolean;
  reason: string | null;
  since: Date | null;
  changed_at: Date;
  changed_by: string;
}

export interface Database {
  outbound_email_bodies: OutboundEmailBodiesTable;
  notice_contacts: NoticeContactsTable;
  status_components: StatusComponentsTable;
  incident_components: IncidentComponentsTable;
  stop_components: StopComponentsTable;
  notice_posts: NoticePostsTable;
  notice_recipients: NoticeRecipientsTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  status_subscribers: StatusSubscribersTable;
  data_export_jobs: DataExportJobsTable;
  monitors: MonitorsTable;
  monitor_customers: MonitorCustomersTable;
  monitor_results: MonitorResultsTable;
  hardware_hosts: HardwareHostsTable;
  hardware_samples: HardwareSamplesTable;
  hardware_rules: HardwareRulesTable;
  hardware_rule_states: HardwareRuleStatesTable;
  hardware_alerts: HardwareAlertsTable;
  round_checklists: RoundChecklistsTable;
  round_checklist_versions: RoundChecklistVersionsTable;
  rounds: RoundsTable;
  terms_versions: TermsVersionsTable;
  terms_notices: TermsNoticesTable;
  terms_notice_customers: TermsNoticeCustomersTable;
  terms_notifications: TermsNotificationsTable;
  terms_consultations: TermsConsultationsTable;
  terms_consultation_messages: TermsConsultationMessagesTable;
  personal_data_breaches: PersonalDataBreachesTable;
  personal_data_breach_customers: PersonalDataBreachCustomersTable;
  incidents: IncidentsTable;
  incident_customers: IncidentCustomersTable;
  outbound_emails: OutboundEmailsTable;
  service_stops: ServiceStopsTable;
  service_stop_customers: ServiceStopCustomersTable;
  gateway_events: GatewayEventsTable;
  misuse_flags: MisuseFlagsTable;
  billable_items: BillableItemsTable;
  migration_requests: MigrationRequestsTable;
  customer_keys: CustomerKeysTable;
  backups: BackupsTable;
  backup_checks: BackupChecksTable;
  backup_restore_jobs: BackupRestoreJobsTable;
  deletion_certificates: DeletionCertificatesTable;
  data_records: DataRecordsTable;
  orphan_blob_candidates: OrphanBlobCandidatesTable;
  gateway_emergency: GatewayEmergencyTable;
  data_files: DataFilesTable;
  data_access_log: DataAccessLogTable;
  users: UsersTable;
  sessions: SessionsTable;
  api_tokens: ApiTokensTable;
  customers: CustomersTable;
  contracts: ContractsTable;
  termination_notices: TerminationNoticesTable;
  breach_notices: BreachNoticesTable;
  data_deletion_due: DataDeletionDueTable;
  audit_log: AuditLogTable;
  jobs: JobsTable;
}
