// Drives npm smpp's PDU codec for tests/smpp/test_interop.py: one JSON request
// per stdin line, one JSON answer per stdout line. No sockets.
//   {"op": "decode", "hex": "..."}                 -> {"command": ..., fields...}
//   {"op": "encode", "command": "...", "options": {...}} -> {"hex": "..."}
const path = require('path');
const readline = require('readline');
const smppDir = path.resolve(process.argv[2]);
const PDU = require(path.join(smppDir, 'lib', 'pdu.js')).PDU;

function plain(value) {
  if (Buffer.isBuffer(value)) return {hex: value.toString('hex')};
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    const out = {};
    for (const key of Object.keys(value)) out[key] = plain(value[key]);
    return out;
  }
  return value;
}

const rl = readline.createInterface({input: process.stdin});
rl.on('line', (line) => {
  const req = JSON.parse(line);
  let answer;
  try {
    if (req.op === 'decode') {
      const pdu = new PDU(Buffer.from(req.hex, 'hex'));
      answer = plain(Object.assign({}, pdu));
    } else {
      answer = {hex: new PDU(req.command, req.options).toBuffer().toString('hex')};
    }
  } catch (err) {
    answer = {error: String(err)};
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
});
