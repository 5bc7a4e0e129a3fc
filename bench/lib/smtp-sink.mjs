// A real SMTP listener in its own process (so its CPU is not the benchmark's): accepts every
// message, counts them, and tells the parent over IPC when the expected number has arrived.
//   parent → { expect: n }   (resets the count)   child → { ready: port } | { done: n, lastAt: ms }
import { SMTPServer } from 'smtp-server';

let expected = Infinity;
let count = 0;
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  logger: false,
  closeTimeout: 200,
  size: 1024 * 1024,
  onData(stream, _session, callback) {
    stream.on('data', () => {});
    stream.on('end', () => {
      callback();
      count++;
      if (count === expected) process.send?.({ done: count, lastAt: Date.now() });
    });
  },
});
process.on('message', (m) => {
  if (m && typeof m.expect === 'number') {
    expected = m.expect;
    count = 0;
  }
  if (m && m.stop) server.close(() => process.exit(0));
});
server.listen(0, '127.0.0.1', () => process.send?.({ ready: server.server.address().port }));
