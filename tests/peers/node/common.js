'use strict';
// Shared by client.js and server.js: configuration input, JSON-lines output,
// and a byte-exact view of submit_sm / deliver_sm bodies.
//
// node-smpp decodes short_message in place (a string, possibly with the UDH
// split off), so the exact octets the peer sent are lost by the time a 'pdu'
// event fires. We keep a copy of every PDU buffer as it is parsed and walk the
// SMPP 3.4 §4.4.1 / §4.6.1 field layout ourselves to report the raw octets and
// every TLV, next to what node-smpp itself decoded.

const smpp = require('smpp');

// Keep the raw buffer of every inbound PDU (PDU.fromStream -> new PDU(buffer)).
const originalFromBuffer = smpp.PDU.prototype.fromBuffer;
smpp.PDU.prototype.fromBuffer = function (buffer) {
  Object.defineProperty(this, 'raw', { value: Buffer.from(buffer), enumerable: false });
  return originalFromBuffer.call(this, buffer);
};

function emit(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event: event, t: Date.now() / 1000 }, fields || {})) + '\n');
}

function readConfig() {
  const arg = process.argv[2];
  if (arg && arg !== '-') {
    return Promise.resolve(JSON.parse(arg));
  }
  return new Promise(function (resolve, reject) {
    const chunks = [];
    process.stdin.on('data', function (c) { chunks.push(c); });
    process.stdin.on('end', function () {
      try { resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))); } catch (e) { reject(e); }
    });
    process.stdin.on('error', reject);
  });
}

function cstring(buf, pos) {
  let end = pos;
  while (end < buf.length && buf[end] !== 0) end++;
  return [buf.toString('latin1', pos, end), Math.min(end + 1, buf.length)];
}

// submit_sm and deliver_sm share one body layout (SMPP 3.4 §4.4.1, §4.6.1).
function parseSmBody(raw) {
  const out = {};
  let pos = 16;
  let s;
  [s, pos] = cstring(raw, pos); out.service_type = s;
  out.source_addr_ton = raw[pos++]; out.source_addr_npi = raw[pos++];
  [s, pos] = cstring(raw, pos); out.source_addr = s;
  out.dest_addr_ton = raw[pos++]; out.dest_addr_npi = raw[pos++];
  [s, pos] = cstring(raw, pos); out.destination_addr = s;
  out.esm_class = raw[pos++]; out.protocol_id = raw[pos++]; out.priority_flag = raw[pos++];
  [s, pos] = cstring(raw, pos); out.schedule_delivery_time = s;
  [s, pos] = cstring(raw, pos); out.validity_period = s;
  out.registered_delivery = raw[pos++]; out.replace_if_present_flag = raw[pos++];
  out.data_coding = raw[pos++]; out.sm_default_msg_id = raw[pos++];
  const smLength = raw[pos++];
  out.short_message_hex = raw.slice(pos, pos + smLength).toString('hex');
  pos += smLength;
  const tlvs = [];
  while (pos + 4 <= raw.length) {
    const tag = raw.readUInt16BE(pos);
    const len = raw.readUInt16BE(pos + 2);
    tlvs.push([tag, raw.slice(pos + 4, pos + 4 + len).toString('hex')]);
    pos += 4 + len;
  }
  out.tlvs = tlvs;
  out.trailing_octets = Math.max(0, raw.length - pos);
  return out;
}

// What node-smpp itself made of short_message / message_payload (its decoder:
// data_coding 0 and 1 as GSM 03.38, 3 as Latin-1, 8 as UTF-16BE).
function nodeText(pdu) {
  const field = pdu.message_payload !== undefined && pdu.message_payload !== null
    ? pdu.message_payload : pdu.short_message;
  if (field === undefined || field === null) return null;
  if (typeof field === 'string') return field;
  if (Buffer.isBuffer(field)) return null;
  return typeof field.message === 'string' ? field.message : null;
}

// `pdu` is one node-smpp parsed (it carries .raw) or one it has just written
// (encoding it again is idempotent: its message fields are Buffers by then).
function describeSm(pdu) {
  const raw = pdu.raw || pdu.toBuffer();
  return Object.assign({ sequence_number: pdu.sequence_number, command_status: pdu.command_status },
    parseSmBody(raw), { text: nodeText(pdu), pdu_hex: raw.toString('hex') });
}

// A message spec from the Python side: either `text` (left to node-smpp's own
// encoder, which picks the data_coding when none is given) or `hex` (octets
// sent verbatim). `udh_hex` prepends a UDH and sets esm_class bit 0x40.
function messageValue(spec) {
  let body = spec.hex !== undefined ? Buffer.from(spec.hex, 'hex') : spec.text;
  if (spec.udh_hex !== undefined) {
    body = { udh: Buffer.from(spec.udh_hex, 'hex'), message: body };
  }
  return body;
}

function smOptions(spec) {
  const options = {};
  const passthrough = ['service_type', 'source_addr_ton', 'source_addr_npi', 'source_addr',
    'dest_addr_ton', 'dest_addr_npi', 'destination_addr', 'esm_class', 'protocol_id',
    'priority_flag', 'schedule_delivery_time', 'validity_period', 'registered_delivery',
    'data_coding', 'sar_msg_ref_num',
    'sar_total_segments', 'sar_segment_seqnum', 'receipted_message_id', 'message_state'];
  for (const key of passthrough) {
    if (spec[key] !== undefined) options[key] = spec[key];
  }
  // Any other optional parameter node-smpp knows by name (SMPP 3.4 §5.3.2).
  for (const key of Object.keys(spec)) {
    if (smpp.tlvs[key] !== undefined && options[key] === undefined) options[key] = spec[key];
  }
  if (spec.payload) {
    options.message_payload = messageValue(spec);
  } else {
    options.short_message = messageValue(spec);
  }
  if (spec.network_error_code_hex !== undefined) {
    options.network_error_code = Buffer.from(spec.network_error_code_hex, 'hex');
  }
  return options;
}

module.exports = { smpp, emit, readConfig, describeSm, smOptions };
