import fs from 'node:fs/promises';
import si from 'systeminformation';
import { z } from 'zod';

/**
 * R12.3①: what one hardware sample of a host holds, shared by the push endpoint, the server's
 * own sampler and `hokan agent`. Kept free of server imports so the agent stays small.
 */

const MAX_BYTES = 2 ** 53 - 1; // exact in a double; no disk or memory comes near it
const bytes = z.number().int({ error: 'must be a whole number of bytes' }).min(0).max(MAX_BYTES);
const counter = z.number().int({ error: 'must be a whole number' }).min(0).max(MAX_BYTES);
const label = z
  .string()
  .min(1)
  .max(200)
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), { error: 'must not contain control characters' });
const celsius = z.number().min(-60, { error: 'must be at least -60 °C' }).max(200, { error: 'must be at most 200 °C' });

export const sampleSchema = z
  .object({
    at: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time with a zone' }),
    cpuPercent: z.number().min(0).max(100),
    memory: z.object({ usedBytes: bytes, totalBytes: bytes.min(1) }).refine((m) => m.usedBytes <= m.totalBytes, { error: 'usedBytes must not exceed totalBytes', path: ['usedBytes'] }),
    load: z.object({ one: z.number().min(0).max(100_000), five: z.number().min(0).max(100_000), fifteen: z.number().min(0).max(100_000) }),
    disks: z
      .array(z.object({ mount: label, fs: label, usedBytes: bytes, totalBytes: bytes }).refine((d) => d.usedBytes <= d.totalBytes, { error: 'usedBytes must not exceed totalBytes', path: ['usedBytes'] }))
      .max(256),
    diskIo: z
      .array(
        z.object({
          device: label,
          reads: counter,
          writes: counter,
          readBytes: counter,
          writeBytes: counter,
          /** Null where the kernel does not expose an error count for the device. */
          ioErrors: counter.nullable(),
        }),
      )
      .max(256),
    temperatures: z.object({ maxC: celsius.nullable(), cpuC: celsius.nullable() }),
  })
  .strict();

export type HardwareSample = z.infer<typeof sampleSchema>;

export const MAX_SAMPLES_PER_PUSH = 500;
export const pushBodySchema = z.object({ samples: z.array(sampleSchema).min(1).max(MAX_SAMPLES_PER_PUSH) }).strict();

/** The metrics a threshold rule can watch. `silence_seconds` comes from when the host last reported. */
export const METRICS = ['cpu_percent', 'memory_percent', 'disk_percent', 'disk_io_errors', 'load1', 'load5', 'load15', 'temperature_c', 'silence_seconds'] as const;
export type Metric = (typeof METRICS)[number];
/** Metrics that a sample carries (everything except silence). */
export const SAMPLE_METRICS = METRICS.filter((m): m is Exclude<Metric, 'silence_seconds'> => m !== 'silence_seconds');
export type SampleMetric = (typeof SAMPLE_METRICS)[number];

const pct = (used: number, total: number) => (total > 0 ? Math.round((used / total) * 10_000) / 100 : 0);

/**
 * The value of a metric in a sample, or null when the sample does not carry it (no temperature
 * sensor, no visible I/O error counts). `target` narrows disk metrics to one mount or device.
 */
export function metricValue(s: HardwareSample, metric: SampleMetric, target: string | null = null): number | null {
  switch (metric) {
    case 'cpu_percent':
      return s.cpuPercent;
    case 'memory_percent':
      return pct(s.memory.usedBytes, s.memory.totalBytes);
    case 'disk_percent': {
      const disks = s.disks.filter((d) => d.totalBytes > 0 && (target === null || d.mount === target || d.fs === target));
      return disks.length ? Math.max(...disks.map((d) => pct(d.usedBytes, d.totalBytes))) : null;
    }
    case 'disk_io_errors': {
      const seen = s.diskIo.filter((d) => d.ioErrors !== null && (target === null || d.device === target));
      return seen.length ? seen.reduce((n, d) => n + (d.ioErrors ?? 0), 0) : null;
    }
    case 'load1':
      return s.load.one;
    case 'load5':
      return s.load.five;
    case 'load15':
      return s.load.fifteen;
    case 'temperature_c':
      return s.temperatures.maxC ?? s.temperatures.cpuC;
  }
}

interface DiskStat {
  device: string;
  reads: number;
  writes: number;
  readBytes: number;
  writeBytes: number;
}

/** Per-device counters from /proc/diskstats (Linux); sectors are 512 bytes there whatever the disk. */
export function parseDiskstats(text: string): DiskStat[] {
  const out: DiskStat[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const device = f[2]!;
    // Whole devices only, not partitions, loop devices or RAM disks.
    if (/^(loop|ram|zram|fd)\d*/.test(device) || /^(sd[a-z]+|vd[a-z]+|xvd[a-z]+|hd[a-z]+)\d+$/.test(device) || /^nvme\d+n\d+p\d+$/.test(device) || /^mmcblk\d+p\d+$/.test(device)) continue;
    const n = (i: number) => Math.min(Number(f[i]) || 0, MAX_BYTES);
    out.push({ device, reads: n(3), writes: n(7), readBytes: Math.min(n(5) * 512, MAX_BYTES), writeBytes: Math.min(n(9) * 512, MAX_BYTES) });
  }
  return out;
}

async function readIoErrors(device: string): Promise<number | null> {
  // SCSI/SATA devices expose the count of failed commands; others (virtio, NVMe) do not.
  try {
    const text = await fs.readFile(`/sys/block/${device}/device/ioerr_cnt`, 'utf8');
    const n = Number.parseInt(text.trim(), text.trim().startsWith('0x') ? 16 : 10);
    return Number.isFinite(n) && n >= 0 ? n : null;
  } catch {
    return null;
  }
}

const nonNegative = (n: number | undefined) => (typeof n === 'number' && Number.isFinite(n) && n > 0 ? Math.min(n, 100_000) : 0);
const round2 = (n: number) => Math.round(n * 100) / 100;
const finiteOrNull = (n: number | null | undefined): number | null => (typeof n === 'number' && Number.isFinite(n) && n > -60 && n < 200 ? round2(n) : null);

/**
 * Samples this host with systeminformation (CPU, memory, filesystems, load, temperatures) and
 * /proc/diskstats + /sys/block (per-disk I/O and errors, where the kernel shows them). `at` is the
 * caller's "now" (the agent's wall clock, or the server's Clock).
 */
export async function collectHostSample(at: Date): Promise<HardwareSample> {
  const [load, mem, fsSize, temp] = await Promise.all([si.currentLoad(), si.mem(), si.fsSize(), si.cpuTemperature().catch(() => null)]);
  let diskIo: HardwareSample['diskIo'] = [];
  try {
    const stats = parseDiskstats(await fs.readFile('/proc/diskstats', 'utf8'));
    diskIo = await Promise.all(stats.slice(0, 256).map(async (d) => ({ ...d, ioErrors: await readIoErrors(d.device) })));
  } catch {
    diskIo = []; // not Linux: no per-disk counters
  }
  const [one, five, fifteen] = await fs
    .readFile('/proc/loadavg', 'utf8')
    .then((t) => t.split(' ').slice(0, 3).map(Number))
    .catch(() => [load.avgLoad, load.avgLoad, load.avgLoad]);
  const cpuC = finiteOrNull(temp?.main);
  const maxC = finiteOrNull(temp?.max) ?? cpuC;
  const seen = new Set<string>();
  const disks: HardwareSample['disks'] = [];
  for (const d of fsSize) {
    if (seen.has(d.mount) || !(d.size > 0)) continue;
    // Files bind-mounted into containers (/etc/hosts, /etc/resolv.conf …) are not disks.
    if (!(await fs.stat(d.mount).then((st) => st.isDirectory()).catch(() => true))) continue;
    seen.add(d.mount);
    disks.push({ mount: d.mount.slice(0, 200) || '?', fs: (d.fs || '?').slice(0, 200), usedBytes: Math.min(Math.max(0, Math.round(d.used)), Math.round(d.size)), totalBytes: Math.round(d.size) });
    if (disks.length >= 256) break;
  }
  const used = Math.max(0, mem.active || mem.used);
  return {
    at: at.toISOString(),
    cpuPercent: Math.min(100, Math.max(0, round2(load.currentLoad || 0))),
    memory: { usedBytes: Math.min(used, mem.total), totalBytes: Math.max(1, mem.total) },
    load: { one: nonNegative(one), five: nonNegative(five), fifteen: nonNegative(fifteen) },
    disks,
    diskIo,
    temperatures: { maxC, cpuC },
  };
}
