'use strict';
// npm `smpp` as an SMSC, for tests of an SMPP client (herald's, or another
// peer's). Configured by one JSON document on argv[2]; listens on 127.0.0.1 and
// an ephemeral port, prints {"event":"listening","port":N} first, then one JSON
// line per event. Commands arrive as JSON lines on stdin:
//   {"op":"deliver", "session": <id or omitted for the latest bound>, ...message spec}
//   {"op":"stop"}
// End of stdin stops the server too, so it never outlives its Python wrapper.
//
// Configuration keys (all optional):
//   accounts          {system_id: password}; absent = accept every bind
//   submit_status     command_status for every submit_sm_resp (default 0)
//   message_id_prefix message ids are prefix + counter (default "")
//   receipts          send a receipt deliver_sm when registered_delivery & 1 (default true)
//   receipt_delay_ms  delay before the receipt (default 20)
//   receipt_before_resp  send the receipt before the submit_sm_resp: true, or a list
//                     of destination_addr values it applies to (default false)
//   receipt_stat      stat: word of the receipt text (default "DELIVRD")

const { smpp, emit, describeSm, smOptions } = require('./common');

// SMPP 3.4 §5.2.28 message_state values matching the receipt text's stat: word.
const MESSAGE_STATE = { ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5,
  ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8 };

function yymmddhhmm(date) {
  const two = function (n) { return ('0' + n).slice(-2); };
  return two(date.getUTCFullYear() % 100) + two(date.getUTCMonth() + 1) +
    two(date.getUTCDate()) + two(date.getUTCHours()) + two(date.getUTCMinutes());
}

function run(cfg) {
  const sessions = {};
  let nextSession = 0;
  let latestBound = null;
  let counter = 0;
  const prefix = cfg.message_id_prefix || '';
  const receipts = cfg.receipts !== false;
  const stat = cfg.receipt_stat || 'DELIVRD';

  function deliver(id, spec) {
    const session = sessions[id];
    if (!session) {
      emit('error', { message: 'no session ' + id });
      return;
    }
    const pdu = new smpp.PDU('deliver_sm', smOptions(spec));
    session.send(pdu, function (resp) {
      emit('deliver_sm_resp', { session: id, sequence_number: resp.sequence_number,
        command_status: resp.command_status, tag: spec.tag === undefined ? null : spec.tag });
    }, function (sent) {
      emit('deliver_sm', Object.assign({ session: id, tag: spec.tag === undefined ? null : spec.tag },
        describeSm(sent)));
    });
  }

  function receipt(id, submit, messageId, submittedAt) {
    const text = 'id:' + messageId + ' sub:001 dlvrd:' + (stat === 'DELIVRD' ? '001' : '000') +
      ' submit date:' + yymmddhhmm(submittedAt) + ' done date:' + yymmddhhmm(new Date()) +
      ' stat:' + stat + ' err:000 text:';
    deliver(id, {
      source_addr: submit.destination_addr, destination_addr: submit.source_addr,
      esm_class: 0x04, data_coding: 0, hex: Buffer.from(text, 'latin1').toString('hex'),
      receipted_message_id: messageId, message_state: MESSAGE_STATE[stat] || 7,
      tag: 'receipt:' + messageId,
    });
  }

  const server = smpp.createServer(function (session) {
    const id = String(++nextSession);
    sessions[id] = session;
    emit('session', { session: id });

    // npm smpp 0.5.1: a session without an 'error' listener takes the whole
    // server down on one malformed header.
    session.on('error', function (err) {
      emit('error', { session: id, message: String(err && err.message || err) });
    });

    ['bind_transceiver', 'bind_transmitter', 'bind_receiver'].forEach(function (command) {
      session.on(command, function (pdu) {
        const want = cfg.accounts ? cfg.accounts[pdu.system_id] : undefined;
        const ok = !cfg.accounts || (want !== undefined && want === pdu.password);
        emit('bind', { session: id, command: command, system_id: pdu.system_id,
          password: pdu.password, interface_version: pdu.interface_version, accepted: ok });
        session.send(pdu.response({ command_status: ok ? 0 : smpp.ESME_RBINDFAIL,
          system_id: 'node-smsc' }));
        if (ok) latestBound = id;
      });
    });

    session.on('submit_sm', function (pdu) {
      const status = cfg.submit_status || 0;
      const messageId = status === 0 ? prefix + String(++counter) : '';
      const submittedAt = new Date();
      emit('submit_sm', Object.assign({ session: id, message_id: messageId }, describeSm(pdu)));
      const wantsReceipt = status === 0 && receipts && (pdu.registered_delivery & 0x01);
      const early = Array.isArray(cfg.receipt_before_resp)
        ? cfg.receipt_before_resp.indexOf(pdu.destination_addr) >= 0 : !!cfg.receipt_before_resp;
      if (wantsReceipt && early) receipt(id, pdu, messageId, submittedAt);
      session.send(pdu.response({ command_status: status, message_id: messageId }));
      if (wantsReceipt && !early) {
        setTimeout(function () { receipt(id, pdu, messageId, submittedAt); },
          cfg.receipt_delay_ms === undefined ? 20 : cfg.receipt_delay_ms);
      }
    });

    session.on('enquire_link', function (pdu) {
      session.send(pdu.response());
    });

    session.on('unbind', function (pdu) {
      emit('unbind', { session: id });
      session.send(pdu.response());
      session.close();
    });

    session.on('unknown', function (pdu) {
      emit('unknown', { session: id, command_id: pdu.command_id });
      session.send(pdu.response());
    });

    session.on('close', function () {
      emit('close', { session: id });
      delete sessions[id];
      if (latestBound === id) latestBound = null;
    });
  });

  function stop() {
    for (const id of Object.keys(sessions)) sessions[id].destroy();
    server.close();
    emit('stopped', {});
    process.stdout.write('', function () { process.exit(0); });
  }

  server.on('error', function (err) {
    emit('error', { message: String(err && err.message || err) });
    process.exit(1);
  });

  server.listen(cfg.port || 0, cfg.host || '127.0.0.1', function () {
    emit('listening', { port: server.address().port });
  });

  let pending = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', function (chunk) {
    pending += chunk;
    let newline;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (!line) continue;
      let command;
      try { command = JSON.parse(line); } catch (e) {
        emit('error', { message: 'bad command: ' + line });
        continue;
      }
      if (command.op === 'stop') stop();
      else if (command.op === 'deliver') deliver(command.session ? String(command.session) : latestBound, command);
      else emit('error', { message: 'unknown op: ' + command.op });
    }
  });
  process.stdin.on('end', stop);
}

let config;
try {
  config = process.argv[2] ? JSON.parse(process.argv[2]) : {};
} catch (err) {
  emit('error', { message: 'bad configuration: ' + err.message });
  process.exit(1);
}
run(config);
