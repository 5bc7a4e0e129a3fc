import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { openIncident, recordMilestone } from '../../src/incidents/incidents.js';
import { clipIntervals, mergeIntervals, subtractIntervals, totalMs } from '../../src/incidents/statistics.js';
import { endStop, schedulePlannedStop, startEmergencyStop } from '../../src/incidents/stops.js';
import type { EmergencyCause } from '../../src/incidents/stops.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';

const ops = systemActor('test');
/** A Japan wall-clock time as an instant. */
const jst = (s: string) => new Date(`${s}+09:00`);

const hasPdftotext = (() => {
  try {
    execFileSync('pdftotext', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('R12.4 interval arithmetic', () => {
  it('merges overlapping and touching intervals, clips and subtracts without double counting', () => {
    expect(mergeIntervals([[5, 10], [0, 3], [2, 6], [12, 12], [10, 11]])).toEqual([[0, 11]]);
    expect(mergeIntervals([[0, 1], [2, 3]])).toEqual([[0, 1], [2, 3]]);
    expect(clipIntervals([[-5, 5], [8, 20]], 0, 10)).toEqual([[0, 5], [8, 10]]);
    expect(subtractIntervals([[0, 10], [20, 30]], [[2, 4], [8, 22], [25, 26]])).toEqual([[0, 2], [4, 8], [22, 25], [26, 30]]);
    expect(subtractIntervals([[0, 10]], [[0, 10]])).toEqual([]);
    expect(totalMs([[0, 10], [5, 15], [20, 25]])).toBe(20);
  });
});

describe.each(databaseKinds)('R12.4 monthly statistics on %s', (kind) => {
  let app: TestApp;
  let a: string;
  let b: string;
  let aCookie: string;
  let bCookie: string;
  let opsCookie: string;
  const ids: Record<string, string> = {};
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-report-'));

  const incident = async (name: string, o: { title: string; severity: 'critical' | 'major' | 'minor'; cause: EmergencyCause | null; occurred: string; detected: string; recovered: string; customers?: string[]; unusable: boolean }) => {
    const i = await openIncident(app.ctx.db, app.clock, ops, {
      title: o.title,
      severity: o.severity,
      cause: o.cause,
      occurredAt: jst(o.occurred),
      detectedAt: jst(o.detected),
      entirelyUnusable: o.unusable,
      ...(o.customers ? { customerIds: o.customers } : {}),
    });
    await recordMilestone(app.ctx.db, app.clock, ops, i.id, 'recovered', jst(o.recovered));
    ids[name] = i.id;
  };

  beforeAll(async () => {
    app = await startTestApp(kind, '2026-10-01T00:00:00Z');
    a = (await addCustomerWithContract(app, 'hinoki')).customer.id;
    b = (await addCustomerWithContract(app, 'kaede')).customer.id;
    await addCustomerUser(app, a, 'hinoki-admin', 'customer_admin');
    await addCustomerUser(app, b, 'kaede-admin', 'customer_admin');
    await addOperator(app, 'stats-ops', ['operator']);
    // Planned stop for everyone, 10 Nov 01:00–05:00 JST, announced well ahead.
    await schedulePlannedStop(app.ctx.db, app.clock, ops, { reason: 'maintenance', description: '定期保守', startsAt: jst('2026-11-10T01:00:00'), endsAt: jst('2026-11-10T05:00:00') }, { minLeadDays: 14 });
    // Emergency stop for everyone 04:00–06:00 JST the same day: overlaps the planned stop's last hour.
    app.clock.set(jst('2026-11-10T04:00:00'));
    const e = await startEmergencyStop(app.ctx.db, app.clock, ops, { cause: 'network_power', description: '回線障害' });
    app.clock.set(jst('2026-11-10T06:00:00'));
    await endStop(app.ctx.db, app.clock, ops, e.id, { note: '復旧' });
    app.clock.set('2026-12-05T03:00:00Z');
    // Across the month boundary: 31 Oct 23:00 → 1 Nov 01:00 JST; detected after 90 min.
    await incident('i2', { title: '月跨ぎ障害', severity: 'major', cause: 'environment_failure', occurred: '2026-10-31T23:00:00', detected: '2026-11-01T00:30:00', recovered: '2026-11-01T01:00:00', customers: [a], unusable: true });
    await incident('i1', { title: '不正アクセス', severity: 'major', cause: 'attack', occurred: '2026-11-10T05:30:00', detected: '2026-11-10T05:40:00', recovered: '2026-11-10T07:00:00', customers: [a], unusable: true });
    await incident('i5', { title: '全体障害', severity: 'critical', cause: 'environment_failure', occurred: '2026-11-10T06:30:00', detected: '2026-11-10T06:45:00', recovered: '2026-11-10T07:30:00', unusable: true });
    // Degraded only, across Japan midnight 20/21 Nov.
    await incident('i3', { title: '応答遅延', severity: 'minor', cause: 'network_power', occurred: '2026-11-20T23:30:00', detected: '2026-11-20T23:35:00', recovered: '2026-11-21T00:30:00', customers: [a], unusable: false });
    await incident('i4', { title: '別顧客の障害', severity: 'major', cause: 'other', occurred: '2026-11-15T10:00:00', detected: '2026-11-15T10:05:00', recovered: '2026-11-15T12:00:00', customers: [b], unusable: true });
    // 25 h: breaches the 24 h target and is liable (24 h 40 min from detection).
    await incident('i6', { title: 'ストレージ全面停止', severity: 'critical', cause: 'environment_failure', occurred: '2026-11-25T00:00:00', detected: '2026-11-25T00:20:00', recovered: '2026-11-26T01:00:00', customers: [a], unusable: true });
    aCookie = await app.signIn('hinoki-admin');
    bCookie = await app.signIn('kaede-admin');
    opsCookie = await app.signIn('stats-ops');
  });
  afterAll(async () => {
    await app?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const report = async (customerId: string, month: string, cookie = opsCookie) => {
    const res = await app.request({ method: 'GET', url: `/api/v1/customers/${customerId}/reports/${month}`, cookie });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().report;
  };

  it('R12.4 R7.2 availability merges overlapping incidents and stops, counts planned stops apart, and splits at Japan midnight and the month boundary', async () => {
    const r = await report(a, '2026-11');
    const month = 30 * 1440;
    // Outage: 60 (1 Nov, tail of i2) + 150 (10 Nov: emergency 05:00–06:00 after the planned stop, i1 05:30–07:00, i5 06:30–07:30, merged) + 1500 (i6).
    expect(r.availability).toMatchObject({ plannedMinutes: 240, measuredMinutes: month - 240, outageMinutes: 1710, degradedMinutes: 60 });
    expect(r.availability.availabilityPct).toBeCloseTo((100 * (month - 240 - 1710)) / (month - 240), 3);
    const day = (d: string) => r.daily.find((x: { date: string }) => x.date === d);
    expect(day('2026-11-01')).toMatchObject({ outageMinutes: 60, plannedMinutes: 0 });
    expect(day('2026-11-10')).toMatchObject({ outageMinutes: 150, plannedMinutes: 240, measuredMinutes: 1200 });
    expect(day('2026-11-10').availabilityPct).toBeCloseTo((100 * (1200 - 150)) / 1200, 3);
    expect(day('2026-11-20')).toMatchObject({ degradedMinutes: 30, outageMinutes: 0, availabilityPct: 100 });
    expect(day('2026-11-21')).toMatchObject({ degradedMinutes: 30 });
    expect(day('2026-11-25')).toMatchObject({ outageMinutes: 1440, availabilityPct: 0 });
    expect(day('2026-11-26')).toMatchObject({ outageMinutes: 60 });
    expect(r.daily).toHaveLength(30);
    // The other half of i2 belongs to October.
    const oct = await report(a, '2026-10');
    expect(oct.daily.find((x: { date: string }) => x.date === '2026-10-31')).toMatchObject({ outageMinutes: 60 });
    expect(oct.summary.slaBreaches).toMatchObject({ detection: 1, restoration: 0, incidentIds: [ids.i2] });
    // Customer B: its own incident and the all-customer ones only.
    const rb = await report(b, '2026-11');
    expect(rb.availability).toMatchObject({ outageMinutes: 120 + 60 + 60, degradedMinutes: 0, plannedMinutes: 240 });
    expect(rb.incidents.map((i: { id: string }) => i.id).sort()).toEqual([ids.i4, ids.i5].sort());
  });

  it('R8.3 R8.4 R20 time to detect and restore, counts by cause and severity, SLA breaches and liability for the month', async () => {
    const r = await report(a, '2026-11');
    // i2 overlaps November but occurred in October: listed, not counted.
    expect(r.incidents.map((i: { id: string }) => i.id)).toEqual([ids.i2, ids.i1, ids.i5, ids.i3, ids.i6]);
    expect(r.summary.count).toBe(4);
    const i6 = r.incidents.find((i: { id: string }) => i.id === ids.i6);
    expect(i6).toMatchObject({ detectMinutes: 20, restoreMinutes: 1500, restoreAfterDetectMinutes: 1480, sla: { detection: 'met', restoration: 'breached' } });
    expect(r.summary.timeToDetect).toEqual({ averageMinutes: 12.5, maxMinutes: 20 });
    expect(r.summary.timeToRestore).toEqual({ averageMinutes: (90 + 60 + 60 + 1500) / 4, maxMinutes: 1500, unresolved: 0 });
    expect(r.summary.byCause).toMatchObject({ environment_failure: 2, attack: 1, network_power: 1, other: 0, unspecified: 0 });
    expect(r.summary.bySeverity).toEqual({ critical: 2, major: 1, minor: 1 });
    expect(r.summary.slaBreaches).toEqual({ detection: 0, restoration: 1, incidentIds: [ids.i6] });
    expect(r.summary.liability).toEqual({ liable: 1, pending: 0, incidentIds: [ids.i6] });
    expect(r.stops.map((s: { kind: string; minutesInMonth: number }) => [s.kind, s.minutesInMonth])).toEqual([['planned', 240], ['emergency', 120]]);
    // Hardware trends come from the monitoring domain; no host has reported in this test.
    expect(r.resources).toEqual([]);
  });

  it('R12.4 the current month is measured up to now; a later month, a bad month and another customer\'s report are refused', async () => {
    const dec = await report(a, '2026-12', aCookie);
    expect(dec.period.measuredUntil).toBe('2026-12-05T03:00:00.000Z');
    expect(dec.daily.find((x: { date: string }) => x.date === '2026-12-06').availabilityPct).toBeNull();
    expect(dec.availability).toMatchObject({ availabilityPct: 100, measuredMinutes: 4 * 1440 + 12 * 60 });
    for (const bad of ['2027-01', '2026-13', '2026-00', '26-11', '2026-11.txt', '1999-12']) {
      const res = await app.request({ method: 'GET', url: `/api/v1/customers/${a}/reports/${bad}`, cookie: aCookie });
      expect(res.statusCode, bad).toBe(400);
      expect(res.json().error.code).toBe('validation_failed');
    }
    for (const suffix of ['', '.html', '.pdf']) {
      const res = await app.request({ method: 'GET', url: `/api/v1/customers/${b}/reports/2026-11${suffix}`, cookie: aCookie });
      expect(res.statusCode).toBe(404);
      expect(res.body).not.toContain('kaede');
    }
    expect((await app.request({ method: 'GET', url: `/api/v1/customers/${a}/reports/2026-11`, cookie: bCookie })).statusCode).toBe(404);
    expect((await app.request({ method: 'GET', url: '/api/v1/reports/2026-11', cookie: aCookie })).statusCode).toBe(403);
  });

  it('R12.4 the HTML report is Japanese first, self-contained, with SVG charts and their tables carrying the figures', async () => {
    const res = await app.request({ method: 'GET', url: `/api/v1/customers/${a}/reports/2026-11.html`, cookie: aCookie });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    const html = res.body;
    expect(html).toMatch(/^<!DOCTYPE html>\n<html lang="ja">/);
    expect(html).toContain('月次稼働報告書 2026年11月');
    expect(html).toContain('Monthly service report, November 2026');
    expect(html).toContain('hinoki 株式会社');
    const r = await report(a, '2026-11');
    expect(html).toContain(`${r.availability.availabilityPct.toFixed(3)}%`);
    expect(html).toContain('1,710');
    expect(html).toContain('<svg role="img" aria-labelledby="daily-title daily-desc"');
    expect(html).toContain('<svg role="img" aria-labelledby="tl-title tl-desc"');
    expect((html.match(/<rect /g) ?? []).length).toBeGreaterThanOrEqual(30);
    expect(html).toContain('日別稼働率（表）');
    expect(html).toContain('<th scope="row">2026-11-10</th><td class="num">87.500%</td><td class="num">150</td>');
    expect(html).toContain('ストレージ全面停止');
    expect(html).not.toContain('別顧客の障害');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  it.skipIf(!hasPdftotext)('R12.4 the PDF report carries the same figures in readable Japanese (pdftotext)', async () => {
    const res = await app.request({ method: 'GET', url: `/api/v1/customers/${a}/reports/2026-11.pdf`, cookie: aCookie });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/pdf');
    expect(res.headers['content-disposition']).toBe('attachment; filename="report-hinoki-2026-11.pdf"');
    const file = path.join(tmp, 'r.pdf');
    fs.writeFileSync(file, res.rawPayload);
    const text = execFileSync('pdftotext', ['-enc', 'UTF-8', file, '-'], { encoding: 'utf8' }).replace(/\s+/g, '');
    const r = await report(a, '2026-11');
    for (const s of ['月次稼働報告書2026年11月', 'hinoki株式会社', `${r.availability.availabilityPct.toFixed(3)}%`, '1,710分', 'ストレージ全面停止', '計画停止', '240分', '12.5/20分']) expect(text, s).toContain(s);
    expect(text).not.toContain('別顧客の障害');
  });

  it('R12.4 R8.3 R20 an incident still open and an emergency stop still running count up to now', async () => {
    // Now: 5 Dec 12:00 JST. A's incident since 10:00 JST; an emergency stop for B from now.
    const open = await openIncident(app.ctx.db, app.clock, ops, { title: '継続中の障害', severity: 'critical', cause: null, occurredAt: jst('2026-12-05T10:00:00'), detectedAt: jst('2026-12-05T10:30:00'), customerIds: [a], entirelyUnusable: true });
    await startEmergencyStop(app.ctx.db, app.clock, ops, { cause: 'attack', description: '攻撃への対処', customerIds: [b] });
    app.clock.advance(3_600_000);
    const ra = await report(a, '2026-12', aCookie);
    expect(ra.availability).toMatchObject({ outageMinutes: 180, measuredMinutes: 4 * 1440 + 13 * 60 });
    expect(ra.daily.find((x: { date: string }) => x.date === '2026-12-05')).toMatchObject({ outageMinutes: 180, measuredMinutes: 780 });
    expect(ra.summary.timeToRestore).toEqual({ averageMinutes: null, maxMinutes: null, unresolved: 1 });
    expect(ra.summary.byCause.unspecified).toBe(1);
    expect(ra.incidents.find((i: { id: string }) => i.id === open.id)).toMatchObject({ restoreMinutes: null, sla: { restoration: 'running' }, liability: { liable: 'pending' } });
    expect(ra.summary.liability).toMatchObject({ pending: 1, liable: 0 });
    const rb = await report(b, '2026-12', bCookie);
    expect(rb.availability.outageMinutes).toBe(60);
    expect(rb.stops).toMatchObject([{ kind: 'emergency', reason: 'attack', endsAt: null, minutesInMonth: 60 }]);
    expect(rb.incidents).toEqual([]);
  });

  it('R12.4 the provider summary lists every customer\'s availability and every incident of the month', async () => {
    const res = await app.request({ method: 'GET', url: '/api/v1/reports/2026-11', cookie: opsCookie });
    expect(res.statusCode).toBe(200);
    const r = res.json().report;
    expect(r.summary.count).toBe(5);
    expect(r.summary.byCause).toMatchObject({ environment_failure: 2, attack: 1, network_power: 1, other: 1 });
    const byCode = Object.fromEntries(r.customers.map((c: { code: string; outageMinutes: number }) => [c.code, c.outageMinutes]));
    expect(byCode).toEqual({ hinoki: 1710, kaede: 240 });
    expect(r.availability.customersBelow99_9).toBe(2);
    expect((await app.request({ method: 'GET', url: '/api/v1/reports/2027-01', cookie: opsCookie })).statusCode).toBe(400);
  });
});
