/**
 * Runs s3rver in a child process for blob-store.test.ts. It has to be a separate process: s3rver
 * makes ListObjectsV2 continuation tokens with DES, which Node 20's OpenSSL 3 only offers with
 * --openssl-legacy-provider, and that flag cannot be turned on inside the Vitest worker.
 * Usage: node --openssl-legacy-provider --import tsx s3rver-server.ts <directory> <bucket>
 * Prints {"port":N} once listening; stops when stdin closes (the test ended or died).
 */
import S3rver from 's3rver';

const [directory, bucket] = process.argv.slice(2);
if (!directory || !bucket) throw new Error('usage: s3rver-server.ts <directory> <bucket>');

const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
const address = await server.run();
process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.stdin.on('end', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
