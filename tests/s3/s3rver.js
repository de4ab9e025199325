// s3rver.js — starts @20minutes/s3rver on loopback for walship's tests.
//
//   node tests/s3/s3rver.js --dir DIR [--port N] [--bucket NAME]... [--key FILE --cert FILE]
//                           [--allow-mismatched-signatures 1]
//
// Prints "listening <port>" on stdout once it accepts connections (--port 0 picks a free
// port). Host-style requests use the endpoint s3.localhost:<port> (bucket.s3.localhost).
// Credentials: S3RVER / S3RVER. NODE_OPTIONS=--openssl-legacy-provider is needed by its
// paginated ListObjectsV2 (continuation tokens use an old cipher); WalshipS3.pm sets it.
// --allow-mismatched-signatures 1 accepts any well-formed SigV4 signature: bench/async.sh uses
// it for pgbackrest, whose signed listing queries s3rver canonicalizes differently (403).
'use strict';
const fs = require('fs');
const path = require('path');
const S3rver = require(path.join(__dirname, 'node_modules', '@20minutes', 's3rver'));

const args = { port: 0, buckets: [] };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i], v = process.argv[i + 1];
  if (k === '--dir') args.dir = v;
  else if (k === '--port') args.port = Number(v);
  else if (k === '--bucket') args.buckets.push(v);
  else if (k === '--key') args.key = fs.readFileSync(v);
  else if (k === '--cert') args.cert = fs.readFileSync(v);
  else if (k === '--allow-mismatched-signatures') args.allowMismatched = v === '1';
  else { console.error(`s3rver.js: unknown option ${k}`); process.exit(2); }
}
if (!args.dir) { console.error('s3rver.js: --dir is required'); process.exit(2); }

const server = new S3rver({
  address: '127.0.0.1',
  port: args.port,
  directory: args.dir,
  silent: !process.env.S3RVER_LOG, // S3RVER_LOG=1: a line per request (profiling)
  serviceEndpoint: 'localhost',
  key: args.key,
  cert: args.cert,
  allowMismatchedSignatures: !!args.allowMismatched,
  configureBuckets: args.buckets.map((name) => ({ name, configs: [] })),
});
server.run().then(
  ({ port }) => console.log(`listening ${port}`),
  (e) => { console.error(`s3rver.js: ${e.message}`); process.exit(1); },
);
process.on('SIGTERM', () => server.close().finally(() => process.exit(0)));
