// hostile.js — a malicious S3 endpoint for walship's tests (path style, no signature check).
//
//   node tests/s3/hostile.js [--port N] [--identity FILE] [--log FILE]
//
// Every bucket answers the same way; the first component of the key (the repository's prefix)
// chooses the behaviour. GET <bucket>/<mode>/walship.repo serves the --identity file (a valid
// identity, so that walship gets as far as the object); any other object key under <mode>/:
//   huge      a walship object header (codec none) claiming 1 TiB of plaintext, then zeros
//             without end
//   seghuge   a header claiming 1 MiB (a whole segment of the test identity), then zeros
//             without end: more bytes than the header says
//   trickle   a header claiming 1 MiB, then one zero byte every 0.5 s
//   lz4empty  a header claiming 1 MiB of lz4 (codec lz4), a valid lz4 frame header, then
//             1-byte blocks that decompress to nothing, without end
//   silent    the request is read and never answered (and the connection kept open)
//   empty404  404 NoSuchKey for everything, walship.repo included (a wrong prefix)
// A bucket listing (GET /<bucket>?list-type=2) is a truncated page with one key and the
// continuation token "same-token-every-time", whatever token it is given.
// Prints "listening <port>"; logs one line per request ("METHOD URL") to --log.
'use strict';
const http = require('http');
const fs = require('fs');
const crypto = require('crypto');

const a = { port: 0 };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i], v = process.argv[i + 1];
  if (k === '--port') a.port = Number(v);
  else if (k === '--identity') a.identity = v;
  else if (k === '--log') a.log = v;
  else { console.error(`hostile.js: unknown option ${k}`); process.exit(2); }
}

// The 64-byte object header of docs/repository-format.md with a lying length.
function objectHeader(length, codec = 0) {
  const h = Buffer.alloc(64);
  h.write('WSHP', 0, 'latin1');
  h[4] = 1; // version
  h[5] = codec; // 0 none, 1 lz4
  h[6] = 0; // no encryption
  h[7] = 1; // kind: segment
  h.writeUInt32LE(64, 8);
  h.writeBigUInt64LE(BigInt(length), 16);
  crypto.createHash('sha256').update('not the real digest').digest().copy(h, 24);
  crypto.createHash('sha256').update(h.subarray(0, 60)).digest().copy(h, 60, 0, 4);
  return h;
}

function s3error(res, status, code) {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>hostile</Message><RequestId>hostile</RequestId></Error>`;
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': body.length });
  res.end(body);
}

// Writes zeros as fast as the client takes them, for ever.
function zeros(res) {
  const chunk = Buffer.alloc(64 * 1024);
  const more = () => {
    while (!res.destroyed && res.write(chunk)) { /* until the socket buffer is full */ }
    if (!res.destroyed) res.once('drain', more);
  };
  more();
}

// An lz4 frame header (magic, FLG 0x64, BD 0x40, HC; as `lz4 -c` writes) and then empty blocks
// (size 1, a lone token 0x00: no literal, no match) for ever.
function emptyBlocks(res) {
  res.write(Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7]));
  const block = Buffer.from([0x01, 0x00, 0x00, 0x00, 0x00]);
  const chunk = Buffer.concat(Array(13107).fill(block));
  const more = () => {
    while (!res.destroyed && res.write(chunk)) { /* until the socket buffer is full */ }
    if (!res.destroyed) res.once('drain', more);
  };
  more();
}

function trickle(res) {
  const t = setInterval(() => {
    if (res.destroyed) { clearInterval(t); return; }
    res.write(Buffer.alloc(1));
  }, 500);
  res.on('close', () => clearInterval(t));
}

function list(res) {
  const body = '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<ListBucketResult><Name>b</Name><Prefix></Prefix><KeyCount>1</KeyCount>' +
    '<MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>' +
    '<Contents><Key>list/backup/x</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>' +
    '<ETag>"x"</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>' +
    '<NextContinuationToken>same-token-every-time</NextContinuationToken>' +
    '</ListBucketResult>';
  res.writeHead(200, { 'Content-Type': 'application/xml', 'Content-Length': body.length });
  res.end(body);
}

const server = http.createServer((req, res) => {
  if (a.log) fs.appendFileSync(a.log, `${req.method} ${req.url}\n`);
  req.resume();
  req.on('end', () => {
    const url = new URL(req.url, 'http://x');
    const parts = url.pathname.split('/').filter(Boolean); // bucket, mode, ...key
    if (parts.length === 1 && url.searchParams.get('list-type') === '2') return list(res);
    const mode = parts[1] || '', key = parts.slice(2).join('/');
    if (mode === 'silent') return; // never answered
    if (mode === 'empty404' || parts.length < 3) return s3error(res, 404, 'NoSuchKey');
    if (key === 'walship.repo') {
      const text = a.identity ? fs.readFileSync(a.identity) : Buffer.alloc(0);
      res.writeHead(200, { 'Content-Length': text.length, ETag: '"identity"' });
      return res.end(req.method === 'HEAD' ? undefined : text);
    }
    if (req.method === 'HEAD') return s3error(res, 404, 'NoSuchKey');
    const headers = { ETag: '"hostile"', 'Content-Type': 'application/octet-stream' };
    if (mode === 'huge') {
      res.writeHead(200, headers); // chunked: no end announced
      res.write(objectHeader(2 ** 40));
      return zeros(res);
    }
    if (mode === 'seghuge') {
      res.writeHead(200, headers);
      res.write(objectHeader(1 << 20));
      return zeros(res);
    }
    if (mode === 'lz4empty') {
      res.writeHead(200, headers);
      res.write(objectHeader(1 << 20, 1));
      return emptyBlocks(res);
    }
    if (mode === 'trickle') {
      res.writeHead(200, { ...headers, 'Content-Length': 64 + (1 << 20) });
      res.write(objectHeader(1 << 20));
      return trickle(res);
    }
    return s3error(res, 404, 'NoSuchKey');
  });
});
server.keepAliveTimeout = 0;
server.listen(a.port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
