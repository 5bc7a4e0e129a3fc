import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  to: string[];
  raw: string;
  headers: Map<string, string>;
  subject: string;
  messageId: string;
  text: string;
}

/** A real SMTP listener on 127.0.0.1 that keeps what it receives; stop() and start() it again on the same port. */
export class TestSmtpListener {
  readonly received: ReceivedMail[] = [];
  #server: SMTPServer | undefined;
  #port = 0;

  constructor(private readonly delayMs = 0) {}

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.#port}`;
  }

  async start(): Promise<void> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      // Pooled clients keep idle connections open; close them promptly (421) instead of after 30 s.
      closeTimeout: 200,
      logger: false,
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          const to = session.envelope.rcptTo.map((r) => r.address);
          setTimeout(() => {
            this.received.push({ to, raw, ...parseMessage(raw) });
            callback();
          }, this.delayMs);
        });
      },
    });
    // A client killed mid-session (the SIGKILL fault tests) resets its connection: that is the
    // client's failure, not the listener's, and must not surface as an uncaught exception here.
    server.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') throw err;
    });
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => resolve());
    });
    this.#port = (server.server.address() as AddressInfo).port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Decodes RFC 2047 encoded words; adjacent words are joined before decoding (a character may span two). */
export function decodeEncodedWords(value: string): string {
  const word = /=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g;
  const runs = /(=\?[^?]+\?[BbQq]\?[^?]*\?=)(?:\s+(=\?[^?]+\?[BbQq]\?[^?]*\?=))*/g;
  return value.replace(runs, (run) => {
    const bytes: Buffer[] = [];
    for (const m of run.matchAll(word)) {
      const [, charset, enc, text] = m as unknown as [string, string, string, string];
      if (charset.toLowerCase() !== 'utf-8') throw new Error(`unexpected charset ${charset}`);
      if (enc.toUpperCase() === 'B') bytes.push(Buffer.from(text, 'base64'));
      else bytes.push(qpBytes(text.replace(/_/g, ' ')));
    }
    return Buffer.concat(bytes).toString('utf8');
  });
}

function qpBytes(text: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      out.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(...Buffer.from(c, 'utf8'));
  }
  return Buffer.from(out);
}

/** Enough MIME for nodemailer's single-part text/plain messages. */
export function parseMessage(raw: string): Omit<ReceivedMail, 'to' | 'raw'> {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const body = raw.slice(split + 4);
  const headers = new Map<string, string>();
  for (const line of head.split('\r\n')) {
    const i = line.indexOf(':');
    headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  if (!(headers.get('content-type') ?? '').toLowerCase().startsWith('text/plain')) throw new Error(`not a single text/plain part: ${headers.get('content-type')}`);
  const cte = (headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  let text: string;
  if (cte === 'base64') text = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  else if (cte === 'quoted-printable') text = qpBytes(body.replace(/=\r\n/g, '')).toString('utf8');
  else text = body;
  return { headers, subject: decodeEncodedWords(headers.get('subject') ?? ''), messageId: headers.get('message-id') ?? '', text: text.replace(/\r\n/g, '\n') };
}
