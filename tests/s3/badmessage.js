// badmessage.js — a hostile "S3 endpoint" for walship's tests (issue 11, "Secrets stay secret").
//
//   node tests/s3/badmessage.js [--status 403] [--hold-ms 0] [--log FILE]
//
// Every request is answered, after --hold-ms (0: at once), with HTTP --status and an S3 error
// body whose <Code> and <Message> carry terminal escape sequences, CR/LF (a forged second log
// line) and 10 kB of text; the reason phrase carries an escape too. Raw sockets, so that nothing
// in Node's HTTP stack cleans the reply up. Prints "listening <port>"; logs "METHOD URL".
'use strict';
const net = require('net');
const fs = require('fs');

const a = { status: 403, holdMs: 0 };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i], v = process.argv[i + 1];
  if (k === '--status') a.status = Number(v);
  else if (k === '--hold-ms') a.holdMs = Number(v);
  else if (k === '--log') a.log = v;
}

const ESC = '\x1b';
const code = `AccessDenied${ESC}[31m\r\nwalship: LOG: forged`;
const message = `evil${ESC}]0;pwned\x07${ESC}[2J\r\nwalship push: archived 000000010000000000000042\n` +
  'X'.repeat(10240) + 'END-OF-HOSTILE-MESSAGE';
const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
  `<Message>${message}</Message><RequestId>1</RequestId></Error>`;

function reply(sock) {
  const head = `HTTP/1.1 ${a.status} Nope${ESC}[5m\r\nContent-Type: application/xml\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
  sock.end(head + body);
}

const server = net.createServer((sock) => {
  let buf = '';
  let answered = false;
  sock.on('error', () => {});
  sock.on('data', (d) => {
    buf += d.toString('latin1');
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0 || answered) return;
    answered = true;
    const line = buf.slice(0, buf.indexOf('\r\n'));
    if (a.log) fs.appendFileSync(a.log, line.split(' ').slice(0, 2).join(' ') + '\n');
    if (a.holdMs > 0) setTimeout(() => reply(sock), a.holdMs);
    else reply(sock);
  });
});
server.listen(0, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
