import fs from 'node:fs';
import type { Command } from 'commander';
import { databaseTargetOf } from '../app.js';
import { systemActor } from '../core/audit/audit-log.js';
import { systemClock } from '../core/clock.js';
import { loadConfig } from '../core/config.js';
import { migrate, openDatabase, type Db } from '../core/db/database.js';
import { parseTermsDocument } from '../terms/parser.js';
import { importTermsVersion, listTermsVersions, publishTermsVersion, validateEdition, validateEffectiveDate } from '../terms/versions.js';

async function withDb<T>(fn: (db: Db) => Promise<T>): Promise<T> {
  const handle = await openDatabase(databaseTargetOf(loadConfig()));
  try {
    await migrate(handle.db);
    return await fn(handle.db);
  } finally {
    await handle.close();
  }
}

/** hokan terms …: import and publish terms versions (R1.1, R2.1). */
export function registerTermsCommands(program: Command): void {
  const terms = program.command('terms').description('terms of use: versions, import, publication (R1.1–R2.2)');

  terms
    .command('import')
    .description('import a terms document (UTF-8 text) as a draft version; --publish also publishes and notifies every customer')
    .argument('<file>', 'the terms document, e.g. ../shared/spec/terms-of-use.ja.txt')
    .requiredOption('--edition <label>', 'edition label, e.g. 6.5版')
    .requiredOption('--effective <date>', 'effective date in Japan, YYYY-MM-DD')
    .option('--publish', 'publish at once (immutable; notifies customers by portal and e-mail)')
    .action(async (file: string, opts: { edition: string; effective: string; publish?: boolean }) => {
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (err) {
        throw new Error(`${file}: ${(err as Error).message}`);
      }
      // Refuse bad input before the database is opened.
      validateEdition(opts.edition);
      validateEffectiveDate(opts.effective);
      parseTermsDocument(text);
      await withDb(async (db) => {
        const actor = systemActor('cli terms import');
        const { version, warnings } = await importTermsVersion(db, systemClock, actor, { edition: opts.edition, effectiveDate: opts.effective, text });
        const c = version.counts;
        process.stdout.write(`imported ${version.edition} (effective ${version.effectiveDate}) as ${version.id}: ${c.articles} articles, ${c.paragraphs} paragraphs, ${c.items} items, ${version.history.length} editions in the 附則\n`);
        for (const h of version.history) process.stdout.write(`  ${h.ordinal.padEnd(8, '　')} ${h.date} (${h.label})\n`);
        for (const w of warnings) process.stdout.write(`warning: ${w}\n`);
        if (opts.publish) {
          const { notified } = await publishTermsVersion(db, systemClock, actor, version.id);
          process.stdout.write(`published; notified ${notified.customers} customers (${notified.emails} e-mails queued)\n`);
        } else {
          process.stdout.write('draft: publish with POST /api/v1/terms/versions/{id}/publish\n');
        }
      });
    });

  terms
    .command('list')
    .description('list terms versions (drafts included)')
    .action(async () => {
      await withDb(async (db) => {
        for (const v of await listTermsVersions(db, { includeDrafts: true })) {
          process.stdout.write(`${v.edition}\t${v.effectiveDate}\t${v.state}${v.publishedAt ? ` ${v.publishedAt}` : ''}\t${v.counts.articles} articles\t${v.id}\n`);
        }
      });
    });
}
