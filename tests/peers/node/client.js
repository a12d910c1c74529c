'use strict';
// npm `smpp` as an ESME, driven by one JSON document (argv[2], or stdin when
// argv[2] is "-" or absent). It connects, binds, submits `messages` with at most
// `window` requests in flight, answers every deliver_sm (deliver_sm_resp with
// `deliver_status`) and enquire_link, then sends `changes` one at a time
// (cancel_sm / replace_sm, naming a submitted message by its index), waits
// until `expect_deliver` deliver_sm have arrived, unbinds, and exits. One JSON object per line on stdout for each
// event; see tests/peers/node.py for the schema and the Python wrapper.
//
// Exit codes: 0 done, 2 bind refused, 3 timed out, 4 connection lost, 1 crash.

const { smpp, emit, readConfig, describeSm, smOptions } = require('./common');

const EXIT_DONE = 0;
const EXIT_BIND_REFUSED = 2;
const EXIT_TIMEOUT = 3;
const EXIT_CLOSED = 4;

function run(cfg) {
  const messages = cfg.messages || [];
  const window = Math.max(1, cfg.window || 10);
  const expectDeliver = cfg.expect_deliver || 0;
  const changes = cfg.changes || [];
  const messageIds = [];
  let changed = 0;
  let changing = false;
  const bindCommand = 'bind_' + (cfg.bind || 'transceiver');
  let next = 0;
  let inFlight = 0;
  let answered = 0;
  let delivered = 0;
  let finishing = false;

  const session = smpp.connect({ host: cfg.host, port: cfg.port });

  function exit(code) {
    emit('exit', { code: code });
    // Let stdout drain before the process ends.
    process.stdout.write('', function () { process.exit(code); });
  }

  const timer = setTimeout(function () {
    emit('timeout', { submitted: next, answered: answered, delivered: delivered });
    session.destroy();
    exit(EXIT_TIMEOUT);
  }, cfg.timeout_ms || 10000);

  function maybeFinish() {
    if (answered === messages.length && !changing) {
      changing = true;
      change();
    }
    if (finishing || answered < messages.length || changed < changes.length ||
        delivered < expectDeliver) return;
    finishing = true;
    setTimeout(function () {
      if (cfg.unbind === false) {
        clearTimeout(timer);
        session.destroy();
        exit(EXIT_DONE);
        return;
      }
      const sent = session.unbind(function (pdu) {
        emit('unbind_resp', { command_status: pdu.command_status });
        clearTimeout(timer);
        session.close();
        exit(EXIT_DONE);
      });
      if (!sent) {
        clearTimeout(timer);
        exit(EXIT_CLOSED);
      }
    }, cfg.linger_ms || 0);
  }

  // cancel_sm / replace_sm in order, each after the previous one's answer.
  function change() {
    if (changed >= changes.length) return;
    const spec = changes[changed];
    const options = Object.assign({}, spec.fields || {});
    if (spec.message !== undefined && spec.message !== null) {
      options.message_id = messageIds[spec.message] || '';
    }
    if (spec.short_message_hex !== undefined) {
      options.short_message = Buffer.from(spec.short_message_hex, 'hex');
    }
    const index = changed;
    session.send(new smpp.PDU(spec.command, options), function (resp) {
      emit('change_resp', { index: index, command: resp.command,
        command_status: resp.command_status });
      changed++;
      change();
      maybeFinish();
    });
  }

  function pump() {
    while (inFlight < window && next < messages.length) {
      const index = next++;
      inFlight++;
      const pdu = new smpp.PDU('submit_sm', smOptions(messages[index]));
      session.send(pdu, function (resp) {
        inFlight--;
        answered++;
        const event = { index: index, sequence_number: resp.sequence_number,
          command_status: resp.command_status };
        if (resp.command === 'generic_nack') event.generic_nack = true;
        else event.message_id = resp.message_id === undefined ? null : resp.message_id;
        messageIds[index] = event.message_id;
        emit('submit_sm_resp', event);
        pump();
        maybeFinish();
      }, function (sentPdu) {
        emit('submit_sm', Object.assign({ index: index }, describeSm(sentPdu)));
      });
    }
  }

  session.on('connect', function () {
    emit('connect', {});
    const bind = { system_id: cfg.system_id, password: cfg.password,
      system_type: cfg.system_type || '' };
    if (cfg.interface_version !== undefined) bind.interface_version = cfg.interface_version;
    session[bindCommand](bind, function (pdu) {
      emit('bind_resp', { command: pdu.command, command_status: pdu.command_status,
        system_id: pdu.system_id === undefined ? null : pdu.system_id });
      if (pdu.command_status !== 0) {
        clearTimeout(timer);
        session.destroy();
        exit(EXIT_BIND_REFUSED);
        return;
      }
      pump();
      maybeFinish();
    });
  });

  session.on('deliver_sm', function (pdu) {
    delivered++;
    const event = describeSm(pdu);
    event.receipted_message_id = pdu.receipted_message_id === undefined ? null : pdu.receipted_message_id;
    event.message_state = pdu.message_state === undefined ? null : pdu.message_state;
    emit('deliver_sm', event);
    session.send(pdu.response({ command_status: cfg.deliver_status || 0 }));
    maybeFinish();
  });

  session.on('enquire_link', function (pdu) {
    emit('enquire_link', { sequence_number: pdu.sequence_number });
    session.send(pdu.response());
  });

  session.on('unbind', function (pdu) {
    emit('unbind', { sequence_number: pdu.sequence_number });
    session.send(pdu.response());
    session.close();
  });

  session.on('generic_nack', function (pdu) {
    emit('generic_nack', { sequence_number: pdu.sequence_number, command_status: pdu.command_status });
  });

  session.on('error', function (err) {
    emit('error', { message: String(err && err.message || err) });
  });

  session.on('close', function () {
    emit('close', {});
    if (!finishing) {
      clearTimeout(timer);
      exit(EXIT_CLOSED);
    }
  });
}

readConfig().then(run, function (err) {
  emit('error', { message: 'bad configuration: ' + err.message });
  process.exit(1);
});
