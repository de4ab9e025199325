// faultproxy.js — an HTTP proxy for walship's tests that injects S3-style failures.
//
//   node tests/s3/faultproxy.js --upstream PORT [--port N] [--rate 0.3]
//        [--faults 503,500,reset,stall,err200] [--seed N] [--stall-ms MS] [--log FILE]
//        [--match REGEX]
//
// Each request is forwarded to 127.0.0.1:<upstream> unchanged (Host header included, so
// signatures still verify), except that with probability --rate it meets one of the faults:
//   503     "503 SlowDown" without reaching the server
//   500     "500 InternalError" without reaching the server
//   reset   forwarded, so the server acts on it, then the connection is cut mid-reply (after
//           half the body, or before any byte for bodiless replies): the "reply lost" case
//   stall   the request is read and never answered (until --stall-ms, default 10 min)
//   err200  for CompleteMultipartUpload (POST ?uploadId=): "200 OK" with an <Error> body;
//           other requests get 500 instead (real S3 only does this on completes and copies)
// --match limits the faults to requests whose URL matches REGEX (the others pass).
// --rate 1 --faults 503 makes an outage. Prints "listening <port>"; logs one line per
// request ("pass|<fault> METHOD URL") to --log.
'use strict';
const http = require('http');
const fs = require('fs');

const a = { port: 0, rate: 0.3, faults: '503,500,reset,stall,err200', seed: 1, stallMs: 600000 };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i], v = process.argv[i + 1];
  if (k === '--upstream') a.upstream = Number(v);
  else if (k === '--port') a.port = Number(v);
  else if (k === '--rate') a.rate = Number(v);
  else if (k === '--faults') a.faults = v;
  else if (k === '--seed') a.seed = Number(v);
  else if (k === '--stall-ms') a.stallMs = Number(v);
  else if (k === '--log') a.log = v;
  else if (k === '--match') a.match = new RegExp(v);
  else { console.error(`faultproxy.js: unknown option ${k}`); process.exit(2); }
}
if (!a.upstream) { console.error('faultproxy.js: --upstream is required'); process.exit(2); }
const faults = a.faults.split(',').filter(Boolean);

// A seeded generator, so a failing run can be replayed.
let state = a.seed >>> 0 || 1;
function rand() {
  state ^= state << 13; state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5; state >>>= 0;
  return state / 4294967296;
}

function log(what, req) {
  if (a.log) fs.appendFileSync(a.log, `${what} ${req.method} ${req.url}\n`);
}

function s3error(res, status, code, message) {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>${message}</Message><RequestId>faultproxy</RequestId></Error>`;
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': body.length });
  res.end(body);
}

function forward(req, body, res, cut) {
  const up = http.request({
    host: '127.0.0.1', port: a.upstream, method: req.method, path: req.url,
    headers: req.headers,
  }, (ur) => {
    const chunks = [];
    ur.on('data', (c) => chunks.push(c));
    ur.on('end', () => {
      const data = Buffer.concat(chunks);
      if (!cut) {
        res.writeHead(ur.statusCode, ur.headers);
        res.end(data);
        return;
      }
      // The server has acted; the client never learns it.
      if (data.length < 2 || req.method === 'HEAD') { req.socket.destroy(); return; }
      res.writeHead(ur.statusCode, ur.headers);
      res.write(data.subarray(0, data.length >> 1), () => setTimeout(() => req.socket.destroy(), 20));
    });
  });
  up.on('error', (e) => s3error(res, 502, 'BadGateway', e.message));
  up.end(body);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    let fault = null;
    if (faults.length && (!a.match || a.match.test(req.url)) && rand() < a.rate) fault = faults[Math.floor(rand() * faults.length)];
    if (fault === 'err200' && !(req.method === 'POST' && /[?&]uploadId=/.test(req.url)))
      fault = '500';
    log(fault || 'pass', req);
    switch (fault) {
      case '503': return s3error(res, 503, 'SlowDown', 'Please reduce your request rate.');
      case '500': return s3error(res, 500, 'InternalError', 'We encountered an internal error.');
      case 'stall': return setTimeout(() => req.socket.destroy(), a.stallMs);
      case 'err200': {
        const xml = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>' +
          '<Message>We encountered an internal error.</Message></Error>';
        res.writeHead(200, { 'Content-Type': 'application/xml', 'Content-Length': xml.length });
        return res.end(xml);
      }
      case 'reset': return forward(req, body, res, true);
      default: return forward(req, body, res, false);
    }
  });
});
server.keepAliveTimeout = 30000;
server.listen(a.port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
