import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { generatePassword } from '../accounts/passwords.js';
import { createOperator } from '../accounts/users.js';
import { disableUser, enableUser, findOperatorIdByLoginId, resetPassword } from '../accounts/user-lifecycle.js';
import { createApp, databaseTargetOf, runInstance } from '../app.js';
import { systemActor, verifyAuditChain } from '../core/audit/audit-log.js';
import { OPERATOR_ROLES, type OperatorRole } from '../core/auth/principal.js';
import { systemClock } from '../core/clock.js';
import { ConfigError, loadConfig, type Config } from '../core/config.js';
import { migrate, openDatabase } from '../core/db/database.js';
import { errors, HokanError } from '../core/errors.js';
import { seedDemo } from '../seed/demo.js';
import pino from 'pino';
import { deriveTotpKey, generateTotpSecret, sealTotpSecret, totpUri } from '../accounts/totp.js';
import { CountryLookup, updateGeoDatabase } from '../gateway/geo/index.js';
import { registerBackupCommands } from './backup-commands.js';
import { registerTermsCommands } from './terms-commands.js';
import { registerAgentCommand } from '../monitoring/agent-command.js';

function config(): Config {
  return loadConfig();
}

async function withDatabase<T>(fn: (db: Awaited<ReturnType<typeof openDatabase>>) => Promise<T>): Promise<T> {
  const handle = await openDatabase(databaseTargetOf(config()));
  try {
    await migrate(handle.db);
    return await fn(handle);
  } finally {
    await handle.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function serve(): Promise<void> {
  const cfg = config();
  const app = await createApp(cfg);
  if (cfg.demoSeed) {
    const credentialsFile = path.join(cfg.dataDir, 'demo-credentials.txt');
    const creds = await seedDemo(app.ctx.db, app.ctx.clock, app.database.kind === 'pglite' ? credentialsFile : null);
    if (creds) {
      const rows = creds.map((c) => `    ${c.loginId.padEnd(16)} ${c.password}   ${c.who}`).join('\n');
      process.stdout.write(`\nhokan: seeded a demo (デモデータを作成しました). Sign in with / サインイン:\n${rows}\n` +
        (app.database.kind === 'pglite' ? `  (also kept in ${credentialsFile}, readable only by you)\n` : '  (shown only now: note them)\n'));
    } else if (app.database.kind === 'pglite') {
      process.stdout.write(`\nhokan: demo sign-in IDs and passwords are in ${credentialsFile}\n`);
    }
  }
  const b = app.ctx.backup;
  if (b.primary) {
    process.stdout.write(`\nhokan: daily backups at ${String(b.dailyAtJstHour).padStart(2, '0')}:00 JST to ${b.primary.description}; remote copies ${b.offsite ? `every ${b.offsiteCycleDays} days to ${b.offsite.description}` : 'NOT configured (HOKAN_OFFSITE_URL; R10.3)'}\n`);
  } else {
    process.stdout.write('\nhokan: WARNING backups are not configured (HOKAN_BACKUP_URL): daily backups on a separate medium (R10.1, R10.2) do not run.\n' +
      '       Try them with: HOKAN_BACKUP_URL=/path/on/another/disk npm start  (or HOKAN_BACKUP_SAME_DEVICE_OK=true for development)\n');
  }
  process.stdout.write(`hokan: master key from ${b.masterKeySource}\n`);
  const geo = app.ctx.gateway?.geo.info();
  if (geo) process.stdout.write(`hokan: Japan-only by ${geo.source.split('/node_modules/')[1] ?? geo.source} (version ${geo.packageVersion ?? '-'}, built ${geo.buildEpoch?.toISOString().slice(0, 10) ?? '-'}; IP Geolocation by DB-IP)\n`);
  const address = await runInstance(app);
  process.stdout.write(
    `\nhokan is running at ${address}  (database: ${app.database.kind} ${app.database.location})\n` +
      `  status:   ${address}/status  (public)\n  portal:   ${address}/portal  (customers)\n  console:  ${address}/console  (operators)\n` +
      `  health:   ${address}/healthz  (readiness: ${address}/readyz)\n  API:      ${address}/api/v1  (OpenAPI: ${address}/api/v1/openapi.json)\n` +
      `  sign in:  curl -c cookies.txt -H 'content-type: application/json' \\\n` +
      `              -d '{"loginId":"admin","password":"…"}' ${address}/api/v1/auth/login\n` +
      `            then: curl -b cookies.txt ${address}/api/v1/contracts\n\n`,
  );
}

function parseRoles(value: string): OperatorRole[] {
  const roles = value.split(',').map((r) => r.trim()).filter(Boolean);
  const bad = roles.filter((r) => !(OPERATOR_ROLES as readonly string[]).includes(r));
  if (roles.length === 0 || bad.length > 0) {
    throw new InvalidArgumentError(`roles must be a comma-separated list of ${OPERATOR_ROLES.join(', ')}${bad.length ? ` (unknown: ${bad.join(', ')})` : ''}`);
  }
  return roles as OperatorRole[];
}

/** The same shape the API accepts, checked before the database is opened. */
function checkLoginIdOption(value: string): string {
  if (!/^[a-z0-9][a-z0-9._-]{2,63}$/.test(value)) {
    throw errors.invalidField('--login-id', `「${value}」はIDの形式ではありません（a-z 0-9 . _ - の3〜64文字、英数字で始まる）。`, `"${value}" is not a sign-in ID (3–64 of a-z 0-9 . _ -, starting with a letter or digit)`);
  }
  return value;
}

export function buildCli(): Command {
  const program = new Command();
  program
    .name('hokan')
    .description('hokan (保管): runs a Japanese data-center service as its terms of use promise.\nConfiguration comes from environment variables (see README).')
    .showHelpAfterError();

  program.command('serve').description('start the platform (HTTP API, jobs); seeds a demo on an empty embedded database').action(serve);

  program.command('migrate').description('apply database migrations and exit').action(async () => {
    await withDatabase(async (h) => process.stdout.write(`migrations applied (${h.kind} ${h.location})\n`));
  });

  const operator = program.command('operator').description("manage the provider's operators");
  operator
    .command('create')
    .description('create an operator, e.g. the first admin; prints a generated password unless --password-stdin')
    .requiredOption('--login-id <id>', 'sign-in ID (3–64 of a-z 0-9 . _ -)')
    .requiredOption('--name <name>', 'display name')
    .requiredOption('--email <address>', 'e-mail address')
    .option('--roles <roles>', `comma-separated: ${OPERATOR_ROLES.join(', ')}`, parseRoles, ['admin'] as OperatorRole[])
    .option('--password-stdin', 'read the password from standard input')
    .action(async (opts: { loginId: string; name: string; email: string; roles: OperatorRole[]; passwordStdin?: boolean }) => {
      if (!/^[a-z0-9][a-z0-9._-]{2,63}$/.test(opts.loginId)) throw new Error(`--login-id "${opts.loginId}": 3–64 of a-z 0-9 . _ -, starting with a letter or digit`);
      if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(opts.email) || opts.email.length > 254) throw new Error(`--email: "${opts.email}" is not an e-mail address`);
      const password = opts.passwordStdin ? await readStdin() : generatePassword();
      await withDatabase(async (h) => {
        const user = await createOperator(h.db, systemClock, systemActor('cli operator create'), {
          loginId: opts.loginId,
          displayName: opts.name,
          email: opts.email,
          roles: opts.roles,
          password,
        });
        process.stdout.write(`created operator ${user.loginId} (${user.roles.join(', ')})\n`);
        if (!opts.passwordStdin) process.stdout.write(`password: ${password}\n(shown only now)\n`);
      });
    });

  operator
    .command('totp')
    .description("enrol an operator's TOTP second factor; prints the secret and otpauth:// URI once")
    .requiredOption('--login-id <id>', "the operator's sign-in ID")
    .action(async (opts: { loginId: string }) => {
      const cfg = config();
      const app = await createApp(cfg, { logger: pino({ level: 'warn' }) });
      try {
        const user = await app.ctx.db.selectFrom('users').select(['id', 'kind']).where('login_id', '=', opts.loginId).executeTakeFirst();
        if (!user || user.kind !== 'operator') throw new Error(`--login-id: no operator "${opts.loginId}"`);
        const secret = generateTotpSecret();
        await app.ctx.db.updateTable('users').set({ totp_secret: sealTotpSecret(deriveTotpKey(app.ctx.backup.masterKey), secret, user.id), totp_last_step: null }).where('id', '=', user.id).execute();
        process.stdout.write(`TOTP enrolled for ${opts.loginId}\nsecret: ${secret}\nuri:    ${totpUri(secret, opts.loginId)}\n(shown only now; sign-in now needs the 6-digit code)\n`);
      } finally {
        await app.close();
      }
    });

  // The operator's own way back in, and the provider's way to shut a leaver or a misused ID out at
  // once (R18.1, R11.1③) even when no admin can sign in. Same rules as the API: the last enabled
  // admin is never disabled.
  operator
    .command('disable')
    .description("disable an operator: sign-in is refused and every session ends at once (not the last enabled admin)")
    .requiredOption('--login-id <id>', "the operator's sign-in ID")
    .option('--reason <text>', 'why, for the audit log')
    .action(async (opts: { loginId: string; reason?: string }) => {
      checkLoginIdOption(opts.loginId);
      await withDatabase(async (h) => {
        const id = await findOperatorIdByLoginId(h.db, opts.loginId);
        const user = await disableUser(h.db, systemClock, systemActor('cli operator disable'), { kind: 'operator' }, id, { reason: opts.reason ?? null });
        process.stdout.write(`disabled operator ${user.loginId}; its sessions have ended\n`);
      });
    });

  operator
    .command('enable')
    .description('enable a disabled operator again')
    .requiredOption('--login-id <id>', "the operator's sign-in ID")
    .option('--reason <text>', 'why, for the audit log')
    .action(async (opts: { loginId: string; reason?: string }) => {
      checkLoginIdOption(opts.loginId);
      await withDatabase(async (h) => {
        const id = await findOperatorIdByLoginId(h.db, opts.loginId);
        const user = await enableUser(h.db, systemClock, systemActor('cli operator enable'), { kind: 'operator' }, id, { reason: opts.reason ?? null });
        process.stdout.write(`enabled operator ${user.loginId}\n`);
      });
    });

  operator
    .command('password')
    .description("set a new password for an operator and end its sessions; prints a generated password unless --password-stdin")
    .requiredOption('--login-id <id>', "the operator's sign-in ID")
    .option('--password-stdin', 'read the new password from standard input')
    .action(async (opts: { loginId: string; passwordStdin?: boolean }) => {
      checkLoginIdOption(opts.loginId);
      const password = opts.passwordStdin ? await readStdin() : generatePassword();
      await withDatabase(async (h) => {
        const id = await findOperatorIdByLoginId(h.db, opts.loginId);
        const user = await resetPassword(h.db, systemClock, systemActor('cli operator password'), { kind: 'operator' }, id, password);
        process.stdout.write(`new password set for operator ${user.loginId}; its sessions have ended\n`);
        if (!opts.passwordStdin) process.stdout.write(`password: ${password}\n(shown only now)\n`);
      });
    });

  const geo = program.command('geo').description('the offline IP-to-country database behind Japan-only (R4.1)');
  geo.command('info').description('which database is in use, its version and build date').action(async () => {
    const lookup = await CountryLookup.open(process.env.HOKAN_GEO_DB ? { path: process.env.HOKAN_GEO_DB } : {});
    const i = lookup.info();
    process.stdout.write(`${i.source}\nversion ${i.packageVersion ?? '(file)'}, built ${i.buildEpoch?.toISOString() ?? '-'}, ${i.databaseType}, ${i.nodeCount} nodes\nIP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0\n`);
  });
  geo.command('update').description('install the newest published database package (then restart hokan)').action(async () => {
    const r = await updateGeoDatabase();
    process.stdout.write(`geo database: ${r.before ?? '-'} → ${r.after ?? '-'}\n`);
  });

  const audit = program.command('audit').description('the hash-chained audit log');
  audit
    .command('verify')
    .description('re-hash the whole chain; exits 1 and names the first broken link if it was tampered with')
    .action(async () => {
      await withDatabase(async (h) => {
        const result = await verifyAuditChain(h.db);
        if (result.ok) {
          process.stdout.write(`audit log OK: ${result.entries} entries, head ${result.headHash}\n`);
        } else {
          process.stdout.write(`audit log BROKEN at entry #${result.brokenAtSeq}: ${result.problem}\n(${result.entries} entries before it verified)\n`);
          process.exitCode = 1;
        }
      });
    });

  registerBackupCommands(program);
  registerTermsCommands(program);
  registerAgentCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildCli();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`hokan: ${err.message}\n`);
    } else if (err instanceof HokanError) {
      process.stderr.write(`hokan: ${err.messages.en}\n       ${err.messages.ja}\n`);
    } else if (err instanceof Error && 'code' in err && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      process.stderr.write(`hokan: the port is already in use (${err.message}); set PORT to another port\n`);
    } else {
      process.stderr.write(`hokan: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.exitCode = 1;
  }
}
