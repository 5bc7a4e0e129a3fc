import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, startTestApp, type TestApp } from '../helpers/app.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { registerHost } from '../../src/monitoring/hardware-hosts.js';
import { ingestSamples } from '../../src/monitoring/hardware-samples.js';
import type { HardwareSample } from '../../src/monitoring/hardware-metrics.js';

const GiB = 1024 ** 3;

function sample(at: string, cpu: number, diskUsedGiB: number): HardwareSample {
  return {
    at,
    cpuPercent: cpu,
    memory: { usedBytes: 4 * GiB, totalBytes: 16 * GiB },
    load: { one: 0.5, five: 0.4, fifteen: 0.3 },
    disks: [{ mount: '/srv', fs: 'ext4', usedBytes: diskUsedGiB * GiB, totalBytes: 100 * GiB }],
    diskIo: [],
    temperatures: { maxC: null, cpuC: null },
  };
}

describe.each(databaseKinds)('R12.4 resource trends in the monthly report on %s', (kind) => {
  let app: TestApp;
  let customerId: string;
  let admin: string;

  beforeAll(async () => {
    app = await startTestApp(kind, '2026-11-20T03:00:00Z');
    customerId = (await addCustomerWithContract(app, 'tsubaki')).customer.id;
    await addCustomerUser(app, customerId, 'tsubaki-admin', 'customer_admin');
    admin = await app.signIn('tsubaki-admin');
  });
  afterAll(async () => {
    await app?.close();
  });

  it('R12.4 the report carries one point per Japan day and host: the daily mean CPU and the daily peak disk use', async () => {
    const { host } = await registerHost(app.ctx.db, app.ctx.clock, systemActor('test'), 'rack-a-01');
    // 2026-11-10 JST: two samples (CPU 20 % and 40 %; disk 50 then 70 GiB); 2026-11-11 JST: one.
    await ingestSamples(app.ctx.db, app.ctx.clock, host.id, [sample('2026-11-10T01:00:00+09:00', 20, 50), sample('2026-11-10T23:00:00+09:00', 40, 70), sample('2026-11-11T00:30:00+09:00', 90, 60)], 90);
    const res = await app.request({ method: 'GET', url: `/api/v1/customers/${customerId}/reports/2026-11`, cookie: admin });
    expect(res.statusCode, res.body).toBe(200);
    const series = res.json().report.resources as Array<{ name: string; unit: string; points: Array<{ at: string; value: number }> }>;
    const cpu = series.find((s) => s.name === 'rack-a-01: CPU')!;
    expect(cpu.points).toEqual([
      { at: '2026-11-09T15:00:00.000Z', value: 30 },
      { at: '2026-11-10T15:00:00.000Z', value: 90 },
    ]);
    const disk = series.find((s) => s.name.startsWith('rack-a-01: ディスク'))!;
    expect(disk.points.map((p) => p.value)).toEqual([70, 60]);
    const html = await app.request({ method: 'GET', url: `/api/v1/customers/${customerId}/reports/2026-11.html`, cookie: admin });
    expect(html.body).toContain('rack-a-01: CPU');
  });
});
