import type { Command } from 'commander';
import pino from 'pino';
import { createApp, type App } from '../app.js';
import { backupView, getBackup, latestGoodBackup, listBackups } from '../backup/catalog.js';
import { restoreDrill } from '../backup/drill.js';
import { customersInCustody } from '../backup/jobs.js';
import { runOffsiteCycle } from '../backup/offsite.js';
import { restoreCustomer, type RestoreProgress } from '../backup/restore.js';
import { runBackup } from '../backup/run-backup.js';
import { verifyBackup, type TargetName } from '../backup/verify.js';
import { systemActor } from '../core/audit/audit-log.js';
import { loadConfig } from '../core/config.js';
import { listCustomers } from '../contracts/customers.js';

/** One instance without HTTP or the job loop: the CLI does the work itself, in the foreground. */
async function withApp<T>(fn: (app: App) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const app = await createApp(config, { logger: pino({ level: 'warn' }) });
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

async function customerIdOf(app: App, code: string): Promise<string> {
  const c = (await listCustomers(app.ctx.db)).find((x) => x.code === code || x.id === code);
  if (!c) throw new Error(`--customer: no customer with code or id "${code}"`);
  return c.id;
}

function parseTarget(v: string): TargetName {
  if (v !== 'primary' && v !== 'offsite') throw new Error(`--target/--from must be primary or offsite, not "${v}"`);
  return v;
}

const mb = (n: number | null) => (n === null ? '-' : `${(n / 1024 / 1024).toFixed(1)} MB`);

function progressPrinter(label: string): (p: RestoreProgress) => void {
  let last = '';
  return (p) => {
    const line = `${label}: ${p.phase} ${p.done}/${p.total}`;
    if (line === last) return;
    last = line;
    if (process.stdout.isTTY) process.stdout.write(`\r${line.padEnd(60)}`);
    else if (p.done === 0 || p.phase === 'done' || p.done === p.total) process.stdout.write(`${line}\n`);
    if (p.phase === 'done' && process.stdout.isTTY) process.stdout.write('\n');
  };
}

export function registerBackupCommands(program: Command): void {
  const backup = program.command('backup').description('backups on the separate medium and the remote site (R10.1–R10.4)');

  backup
    .command('run')
    .description('back up one customer now, or every customer in custody')
    .option('--customer <code>', 'customer code or id')
    .option('--all', 'every customer whose data is in custody')
    .action(async (opts: { customer?: string; all?: boolean }) => {
      if (!opts.customer && !opts.all) throw new Error('say which: --customer <code> or --all');
      await withApp(async (app) => {
        const ids = opts.all ? await customersInCustody(app.ctx.db) : [await customerIdOf(app, opts.customer!)];
        let failed = 0;
        for (const id of ids) {
          try {
            const row = await runBackup({ db: app.ctx.db, clock: app.ctx.clock, live: app.ctx.files, settings: app.ctx.backup, instanceId: app.ctx.config.instanceId }, id, { generation: 'manual' });
            process.stdout.write(`good  ${row.id}  customer ${id}  ${row.snapshot_records} records, ${row.snapshot_files} files, ${mb(Number(row.stored_bytes))} stored\n`);
          } catch (err) {
            failed++;
            process.stdout.write(`FAILED customer ${id}: ${(err as Error).message}\n`);
          }
        }
        if (failed) process.exitCode = 1;
      });
    });

  backup
    .command('list')
    .description('the catalog, newest first')
    .option('--customer <code>', 'customer code or id')
    .action(async (opts: { customer?: string }) => {
      await withApp(async (app) => {
        const rows = await listBackups(app.ctx.db, opts.customer ? { customerId: await customerIdOf(app, opts.customer) } : {});
        for (const r of rows.map(backupView)) {
          process.stdout.write(`${r.startedAt}  ${r.id}  ${r.state.padEnd(7)} ${r.generation.padEnd(7)} customer ${r.customerId}  ${String(r.records ?? '-').padStart(7)} rec ${String(r.files ?? '-').padStart(5)} files ${mb(r.storedBytes).padStart(10)}  remote: ${r.offsite.state}${r.error ? `  error: ${r.error}` : ''}\n`);
        }
        if (rows.length === 0) process.stdout.write('no backups\n');
      });
    });

  backup
    .command('verify')
    .description('re-read a backup, check every checksum and decrypt; exits 1 naming any broken part')
    .option('--backup <id>', 'one backup')
    .option('--customer <code>', "that customer's latest good backup")
    .option('--all', 'the latest good backup of every customer')
    .option('--target <target>', 'primary or offsite', parseTarget, 'primary' as TargetName)
    .action(async (opts: { backup?: string; customer?: string; all?: boolean; target: TargetName }) => {
      if (!opts.backup && !opts.customer && !opts.all) throw new Error('say which: --backup <id>, --customer <code> or --all');
      await withApp(async (app) => {
        const ids: string[] = [];
        if (opts.backup) ids.push((await getBackup(app.ctx.db, opts.backup)).id);
        const customers = opts.all ? (await listCustomers(app.ctx.db)).map((c) => c.id) : opts.customer ? [await customerIdOf(app, opts.customer)] : [];
        for (const c of customers) {
          const latest = await latestGoodBackup(app.ctx.db, c);
          if (latest) ids.push(latest.id);
          else if (!opts.all) throw new Error(`customer ${opts.customer} has no good backup`);
        }
        let bad = 0;
        for (const id of ids) {
          const v = await verifyBackup({ db: app.ctx.db, clock: app.ctx.clock, settings: app.ctx.backup }, id, opts.target);
          if (v.ok) process.stdout.write(`OK      ${id} (${opts.target}): ${v.partsChecked} parts, ${v.records} records, ${v.files} files\n`);
          else {
            bad++;
            process.stdout.write(`BROKEN  ${id} (${opts.target}):\n${v.problems.map((p) => `        ${p.part}: ${p.problem}`).join('\n')}\n`);
          }
        }
        if (bad) process.exitCode = 1;
      });
    });

  backup
    .command('restore')
    .description("restore a customer to a catalogued backup, atomically (R10.4); shows progress")
    .option('--backup <id>', 'the backup to restore (its customer is restored)')
    .option('--customer <code>', "restore that customer's latest good backup")
    .option('--all-customers', 'restore every customer to its latest good backup')
    .option('--from <target>', 'primary or offsite', parseTarget, 'primary' as TargetName)
    .action(async (opts: { backup?: string; customer?: string; allCustomers?: boolean; from: TargetName }) => {
      if (!opts.backup && !opts.customer && !opts.allCustomers) throw new Error('say which: --backup <id>, --customer <code> or --all-customers');
      await withApp(async (app) => {
        const ids: string[] = [];
        if (opts.backup) ids.push((await getBackup(app.ctx.db, opts.backup)).id);
        const customers = opts.allCustomers ? await customersInCustody(app.ctx.db) : opts.customer ? [await customerIdOf(app, opts.customer)] : [];
        for (const c of customers) {
          const latest = await latestGoodBackup(app.ctx.db, c);
          if (!latest) throw new Error(`customer ${c} has no good backup`);
          ids.push(latest.id);
        }
        let failed = 0;
        for (const id of ids) {
          try {
            const r = await restoreCustomer({ db: app.ctx.db, clock: app.ctx.clock, settings: app.ctx.backup, live: app.ctx.files }, { backupId: id, from: opts.from, actor: systemActor('cli backup restore'), onProgress: progressPrinter(`restore ${id}`) });
            process.stdout.write(`restored customer ${r.customerId} from ${r.from}: ${r.records} records, ${r.files} files\n`);
          } catch (err) {
            failed++;
            process.stdout.write(`\nFAILED ${id}: ${(err as Error).message} (live data left as it was)\n`);
          }
        }
        if (failed) process.exitCode = 1;
      });
    });

  backup
    .command('offsite')
    .description('run the remote-copy cycle now (R10.3)')
    .action(async () => {
      await withApp(async (app) => {
        const r = await runOffsiteCycle({ db: app.ctx.db, clock: app.ctx.clock, settings: app.ctx.backup });
        process.stdout.write(`copied ${r.copied.length}, failed ${r.failed.length}, overdue customers ${r.overdue.length}\n`);
        if (r.failed.length) process.exitCode = 1;
      });
    });

  backup
    .command('drill')
    .description("restore a customer's latest backup into a scratch area and compare it with the source")
    .requiredOption('--customer <code>', 'customer code or id')
    .action(async (opts: { customer: string }) => {
      await withApp(async (app) => {
        const r = await restoreDrill({ db: app.ctx.db, clock: app.ctx.clock, settings: app.ctx.backup }, await customerIdOf(app, opts.customer));
        if (!r) throw new Error('the customer has no good backup');
        process.stdout.write(`${r.ok ? 'OK' : 'FAILED'}  drill of ${r.backupId}: ${r.records.restored}/${r.records.expected} records, ${r.filesChecked} files${r.problems.length ? `\n  ${r.problems.join('\n  ')}` : ''}\n`);
        if (!r.ok) process.exitCode = 1;
      });
    });
}
