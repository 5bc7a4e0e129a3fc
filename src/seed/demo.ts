import fs from 'node:fs';
import path from 'node:path';
import { generatePassword } from '../accounts/passwords.js';
import { countOperators, createCustomerUser, createOperator } from '../accounts/users.js';
import { createContract } from '../contracts/contracts.js';
import { createCustomer } from '../contracts/customers.js';
import { systemActor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';
import { addDays, japanDateOf } from '../core/japan-time.js';
import { bi } from '../core/i18n.js';
import { createComponent } from '../notify/components.js';
import { importTermsVersion, publishTermsVersion } from '../terms/versions.js';

export interface DemoCredential {
  loginId: string;
  password: string;
  who: string;
}

/**
 * Seeds a small demo on an empty database: one provider admin and two customers, each with a
 * contract, an admin and a member. Passwords are random, shown once and kept in a 0600 file.
 */
export async function seedDemo(db: Db, clock: Clock, credentialsFile: string | null): Promise<DemoCredential[] | null> {
  if ((await countOperators(db)) > 0) return null;
  const actor = systemActor('demo seed');
  const creds: DemoCredential[] = [];
  const pw = (loginId: string, who: string) => {
    const password = generatePassword();
    creds.push({ loginId, password, who });
    return password;
  };
  await createOperator(db, clock, actor, { loginId: 'admin', displayName: '事業者管理者', email: 'admin@provider.example.jp', roles: ['admin'], password: pw('admin', 'provider admin / 事業者管理者') });
  const today = japanDateOf(clock.now());
  const demos = [
    { code: 'sakura', name: 'さくら介護サービス株式会社', email: 'it@sakura-kaigo.example.jp', contract: 'HK-2026-0001', fee: 55_000 },
    { code: 'midori', name: '社会福祉法人みどり会', email: 'jimu@midori-kai.example.jp', contract: 'HK-2026-0002', fee: 88_000 },
  ];
  for (const d of demos) {
    const customer = await createCustomer(db, clock, actor, { code: d.code, name: d.name, contactEmail: d.email });
    await createContract(db, clock, actor, {
      customerId: customer.id,
      contractNumber: d.contract,
      termStart: today,
      termEnd: addDays(today, 364),
      monthlyFeeYen: d.fee,
      systemUseContractNumber: `SU-${d.contract}`,
      supportContractNumber: `SP-${d.contract}`,
    });
    await createCustomerUser(db, clock, actor, { customerId: customer.id, loginId: `${d.code}-admin`, displayName: `${d.name} 管理者`, email: `admin@${d.code}.example.jp`, role: 'customer_admin', password: pw(`${d.code}-admin`, `${d.name} customer admin`) });
    await createCustomerUser(db, clock, actor, { customerId: customer.id, loginId: `${d.code}-staff`, displayName: `${d.name} 職員`, email: `staff@${d.code}.example.jp`, role: 'member', password: pw(`${d.code}-staff`, `${d.name} member`) });
  }
  // What the status page lists (R8.2) before an operator names components of their own.
  const components = [
    ['care-records', bi('介護記録システム', 'Care records system')],
    ['data-api', bi('データAPI', 'Data API')],
    ['portal', bi('お客様ポータル', 'Customer portal')],
  ] as const;
  for (const [i, [key, name]] of components.entries()) await createComponent(db, clock, actor, key, { name, position: i });
  // The terms in force (R1.1): the provider's real document, its latest edition per its 附則.
  const text = fs.readFileSync(new URL('./terms-of-use.ja.txt', import.meta.url), 'utf8');
  const { version } = await importTermsVersion(db, clock, actor, { edition: '第六、五版', effectiveDate: '2021-08-16', text });
  await publishTermsVersion(db, clock, actor, version.id);
  if (credentialsFile) {
    fs.mkdirSync(path.dirname(credentialsFile), { recursive: true });
    const lines = creds.map((c) => `${c.loginId}\t${c.password}\t${c.who}`);
    fs.writeFileSync(credentialsFile, `# hokan demo sign-in (login ID, password, who)\n${lines.join('\n')}\n`, { mode: 0o600 });
  }
  return creds;
}
