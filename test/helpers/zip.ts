import * as yauzl from 'yauzl';

export interface ZipEntry {
  name: string;
  utf8Flag: boolean;
  data: Buffer;
}

/** Reads with yauzl's strict settings: a bad name, a size mismatch or a missing central directory throws. */
export async function readZip(buf: Buffer): Promise<ZipEntry[]> {
  const zip = await yauzl.fromBufferPromise(buf, { lazyEntries: true, strictFileNames: true, validateEntrySizes: true });
  const out: ZipEntry[] = [];
  for await (const entry of zip.eachEntry()) {
    const chunks: Buffer[] = [];
    for await (const c of await zip.openReadStreamPromise(entry)) chunks.push(c as Buffer);
    out.push({ name: entry.fileName, utf8Flag: (entry.generalPurposeBitFlag & 0x800) !== 0, data: Buffer.concat(chunks) });
  }
  return out;
}
