"""herald.toml validation: every mistake names its field."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from herald.cluster import LeaseSettings
from herald.config import ConfigError, load_config, parse_config, parse_listen
from herald.dispatch import DispatchSettings
from herald.smpp.message_id import IdPolicy
from herald.text import Method, SmscDefault

GOOD = {
    "data_dir": "data",
    "http": {"listen": "127.0.0.1:9080"},
    "smpp": {"listen": "[::1]:2776", "window": 32},
    "connectors": [
        {
            "name": "op-a", "host": "127.0.0.1", "port": 2775, "system_id": "herald",
            "password_env": "OPA_PW", "binds": 2, "window": 20, "tps": 30,
            "receipt_id_policy": "hex_to_dec", "data_coding_0": "latin1",
        },
        {"name": "op-b", "host": "127.0.0.1", "port": 2776, "system_id": "h", "password": "pw"},
    ],
    "routes": [
        {"prefix": "+44", "connectors": ["op-a", "op-b"]},
        {"prefix": "", "connectors": ["op-b"]},
    ],
}


def test_a_full_config_parses_into_typed_values(tmp_path: Path) -> None:
    config = parse_config(GOOD, base=tmp_path, env={"OPA_PW": "s3cret-long-pw"})
    assert config.data_dir == tmp_path / "data"
    assert (config.http.host, config.http.port) == ("127.0.0.1", 9080)
    assert (config.smpp.host, config.smpp.port, config.smpp.window) == ("::1", 2776, 32)
    a = config.connector("op-a")
    assert a.password == "s3cret-long-pw"
    assert a.receipt_id_policy is IdPolicy.HEX_TO_DEC
    assert a.smsc_default is SmscDefault.LATIN1
    assert (a.binds, a.window, a.tps) == (2, 20, 30.0)
    assert config.routes[0].prefix == "44"
    assert config.routes[0].connectors == ("op-a", "op-b")


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    config = parse_config(GOOD, base=tmp_path, env={"OPA_PW": "s3cret-long-pw"})
    assert "s3cret-long-pw" not in repr(config)
    assert "'pw'" not in repr(config.connector("op-b"))


def test_the_store_is_sqlite_unless_store_url_names_postgresql() -> None:
    assert parse_config(GOOD, env={"OPA_PW": "x"}).store.url is None  # the data dir's SQLite
    url = "postgresql://herald:s3cret@db.example:5432/herald"
    config = parse_config({**GOOD, "store": {"url": url}}, env={"OPA_PW": "x"})
    assert config.store.url == url
    assert "s3cret" not in repr(config)
    for bad, said in (("sqlite:///var/lib/herald", "is not a PostgreSQL URL"),
                      ("postgresql://herald:s3cret@db.example:5432", "names no database")):
        with pytest.raises(ConfigError) as info:
            parse_config({**GOOD, "store": {"url": bad}}, env={"OPA_PW": "x"})
        assert info.value.path == "store.url"
        assert said in str(info.value) and "s3cret" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_config({**GOOD, "store": {"url": url, "pool": 5}}, env={"OPA_PW": "x"})
    assert info.value.path == "store.pool"


def test_store_history_days_is_a_whole_number_of_days_from_eight() -> None:
    url = "postgresql://herald@db.example:5432/herald"
    assert parse_config({**GOOD, "store": {"url": url}}, env={"OPA_PW": "x"}
                        ).store.history_days is None  # fmt: skip
    kept = parse_config({**GOOD, "store": {"url": url, "history_days": 90}}, env={"OPA_PW": "x"})
    assert kept.store.history_days == 90
    for bad, said in ((7, "between 8 and"), (2.5, "must be int"), (True, "not a boolean")):
        with pytest.raises(ConfigError) as info:
            parse_config({**GOOD, "store": {"url": url, "history_days": bad}},
                         env={"OPA_PW": "x"})  # fmt: skip
        assert info.value.path == "store.history_days" and said in str(info.value)


def test_store_retention_days_on_either_store() -> None:
    default = parse_config(GOOD, env={"OPA_PW": "x"}).store
    assert (default.message_days, default.text_days, default.cdr_days) == (None, None, None)
    kept = parse_config({**GOOD, "store": {"message_days": 90, "text_days": 30,
                                           "cdr_days": 3650}}, env={"OPA_PW": "x"}).store
    assert (kept.url, kept.message_days, kept.text_days, kept.cdr_days) == (None, 90, 30, 3650)
    for store, key, said in (({"message_days": 7}, "message_days", "between 8 and"),
                             ({"cdr_days": 0}, "cdr_days", "between 1 and"),
                             ({"text_days": 0}, "text_days", "between 1 and"),
                             ({"message_days": 30, "text_days": 30}, "text_days",
                              "fewer than message_days (30)"),
                             ({"message_days": "90"}, "message_days", "must be int"),
                             ({"cdr_days": True}, "cdr_days", "not a boolean")):
        with pytest.raises(ConfigError) as info:
            parse_config({**GOOD, "store": store}, env={"OPA_PW": "x"})
        assert info.value.path == f"store.{key}" and said in str(info.value)


def test_processes_and_event_loop() -> None:
    default = parse_config(GOOD, env={"OPA_PW": "x"})
    assert (default.processes, default.loop, default.event_loop()) == (0, "auto", "uvloop")
    assert default.process_count() in (1, 2)  # "auto": by the CPUs this process may use
    chosen = parse_config({**GOOD, "processes": 1, "loop": "asyncio"}, env={"OPA_PW": "x"})
    assert (chosen.process_count(), chosen.event_loop()) == (1, "asyncio")
    assert parse_config({**GOOD, "processes": "2"}, env={"OPA_PW": "x"}).process_count() == 2
    assert default.intake_nice == 0
    assert parse_config({**GOOD, "intake_nice": 4}, env={"OPA_PW": "x"}).intake_nice == 4
    for bad, path in (({"processes": 3}, "processes"), ({"processes": True}, "processes"),
                      ({"loop": "tokio"}, "loop"), ({"intake_nice": 20}, "intake_nice"),
                      ({"intake_nice": -1}, "intake_nice"), ({"intake_nice": "4"}, "intake_nice")):
        with pytest.raises(ConfigError) as info:
            parse_config({**GOOD, **bad}, env={"OPA_PW": "x"})
        assert info.value.path == path


@pytest.mark.parametrize("tps", ["unlimited", math.inf])
def test_a_connector_without_a_tps_limit(tps: object) -> None:
    data = {**GOOD, "connectors": [{"name": "x", "host": "h", "port": 1, "system_id": "s",
                                    "password": "p", "tps": tps}], "routes": []}  # fmt: skip
    assert parse_config(data).connectors[0].tps == math.inf
    data["connectors"][0]["tps"] = "fast"  # type: ignore[index]
    with pytest.raises(ConfigError, match='must be a number or "unlimited"'):
        parse_config(data)


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"http": {"listen": "example.org:80"}}, "http.listen"),
        ({"http": {"listen": "127.0.0.1:99999"}}, "http.listen"),
        ({"smpp": {"window": 0}}, "smpp.window"),
        ({"smpp": {"colour": "blue"}}, "smpp.colour"),
        ({"connectors": [{"name": "x", "host": "h", "port": 1, "system_id": "s"}]},
         "connectors[0].password"),
        ({"connectors": [{"name": "x", "host": "h", "port": 1, "system_id": "s",
                          "password": "p", "tps": True}]}, "connectors[0].tps"),
        ({"connectors": [{"name": "x", "host": "h", "port": 1, "system_id": "s",
                          "password": "p", "bind_type": "both"}]}, "connectors[0].bind_type"),
        ({"connectors": [{"name": "x", "host": "h", "port": 1, "system_id": "s" * 16,
                          "password": "p"}]}, "connectors[0].system_id"),
        ({"routes": [{"prefix": "44", "connectors": ["nobody"]}]}, "routes[0].connectors[0]"),
        ({"routes": [{"prefix": "4x", "connectors": ["op-b"]}]}, "routes[0].prefix"),
    ],
)
def test_each_mistake_names_its_field(patch: dict[str, object], path: str) -> None:
    data = {**GOOD, **patch}
    if "routes" not in patch and "connectors" in patch:
        data["routes"] = []
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={"OPA_PW": "x"})
    assert info.value.path == path, str(info.value)


def test_receipt_timeout_and_query_sm_per_connector() -> None:
    data = {**GOOD, "connectors": [
        {"name": "x", "host": "h", "port": 1, "system_id": "s", "password": "p",
         "receipt_timeout": 900, "query_sm": True},
        {"name": "y", "host": "h", "port": 2, "system_id": "s", "password": "p"},
    ], "routes": []}  # fmt: skip
    x, y = parse_config(data).connectors
    assert (x.receipt_timeout, x.query_sm) == (900.0, True)
    assert (y.receipt_timeout, y.query_sm) == (3600.0, False)  # the documented defaults
    for bad, message in (({"receipt_timeout": 0}, "between 1 and"),
                         ({"receipt_timeout": "1h"}, "must be int/float"),
                         ({"query_sm": "yes"}, "must be bool")):
        data["connectors"][0].update(bad)  # type: ignore[index]
        with pytest.raises(ConfigError, match=message) as info:
            parse_config(data)
        assert info.value.path == f"connectors[0].{next(iter(bad))}"
        data["connectors"][0].update(receipt_timeout=900, query_sm=True)  # type: ignore[index]
    # A timeout the validity of a message would always beat is a mistake.
    data["intake"] = {"default_validity": 600}
    with pytest.raises(ConfigError, match="below \\[intake\\] default_validity") as info:
        parse_config(data)
    assert info.value.path == "connectors[0].receipt_timeout"


def test_missing_password_env_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="OPA_PW is not set") as info:
        parse_config(GOOD, env={})
    assert info.value.path == "connectors[0].password_env"


def test_intake_section_sets_the_policy(tmp_path: Path) -> None:
    config = parse_config({"intake": {"test_prefixes": ["+999", "00"], "require_valid_number":
                                      False, "default_validity": 3600, "max_validity": 7200}},
                          base=tmp_path)
    assert config.intake.test_prefixes == ("999", "00")
    assert not config.intake.require_valid_number
    assert (config.intake.default_validity, config.intake.max_validity) == (3600, 7200)
    with pytest.raises(ConfigError) as info:
        parse_config({"intake": {"test_prefixes": ["99x"]}})
    assert info.value.path == "intake.test_prefixes[0]"
    with pytest.raises(ConfigError) as info:
        parse_config({"intake": {"default_validity": 7200, "max_validity": 3600}})
    assert info.value.path == "intake.max_validity"


def test_listen_forms() -> None:
    assert parse_listen(":2775", "x", 1) == ("127.0.0.1", 2775)
    assert parse_listen("0.0.0.0:80", "x", 1) == ("0.0.0.0", 80)
    assert parse_listen("[::1]", "x", 7) == ("::1", 7)


def test_load_reports_syntax_errors_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "herald.toml"
    bad.write_text("[http\nlisten=1")
    with pytest.raises(ConfigError, match=r"herald\.toml"):
        load_config(bad)


def test_the_shipped_example_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "herald.example.toml"
    config = load_config(example, env={"OPERATOR_A_PASSWORD": "x", "OPERATOR_B_PASSWORD": "y"})
    assert config.connectors and config.routes


def test_inbound_rules_and_concatenation_parse() -> None:
    data = {
        **GOOD,
        "connectors": [{**GOOD["connectors"][1], "concatenation": "sar"}],
        "routes": [],
        "inbound": [
            {"number": "+447700900123", "account": "acme"},
            {"prefix": "4477009", "account": "beta"},
            {"prefix": "", "account": "house"},
        ],
    }
    config = parse_config(data, env={})
    assert config.connectors[0].concatenation is Method.SAR
    assert config.connector("op-b").concatenation is Method.SAR
    assert [(r.number, r.prefix, r.account) for r in config.inbound] == [
        ("447700900123", None, "acme"), (None, "4477009", "beta"), (None, "", "house"),
    ]  # fmt: skip
    assert parse_config({}, env={}).inbound == ()
    assert parse_config(GOOD, env={"OPA_PW": "x"}).connector("op-a").concatenation is Method.UDH8


@pytest.mark.parametrize(
    ("inbound", "path"),
    [
        ([{"account": "acme"}], "inbound[0].number"),
        ([{"number": "1", "prefix": "1", "account": "acme"}], "inbound[0].number"),
        ([{"number": "12ab", "account": "acme"}], "inbound[0].number"),
        ([{"prefix": "4" * 21, "account": "acme"}], "inbound[0].prefix"),
        ([{"number": "", "account": "acme"}], "inbound[0].number"),
        ([{"prefix": "44"}], "inbound[0].account"),
        ([{"prefix": "44", "account": ""}], "inbound[0].account"),
        ([{"prefix": "44", "account": "a", "keyword": "STOP"}], "inbound[0].keyword"),
        ([{"prefix": "44", "account": "a"}, {"prefix": "+44", "account": "b"}],
         "inbound[1].prefix"),
        ([{"number": "1", "account": "a"}, {"number": "1", "account": "b"}],
         "inbound[1].number"),
    ],
)
def test_each_inbound_mistake_names_its_field(inbound: list[object], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"inbound": inbound}, env={})
    assert info.value.path == path, str(info.value)


def test_an_unknown_concatenation_is_named() -> None:
    bad = {**GOOD["connectors"][1], "concatenation": "udh7"}
    with pytest.raises(ConfigError) as info:
        parse_config({"connectors": [bad]}, env={})
    assert info.value.path == "connectors[0].concatenation"


def test_the_guard_audit_log_herald_serve_reads(tmp_path: Path) -> None:
    default = parse_config({}, base=tmp_path)
    assert default.guard.log_path(default.data_dir) == default.data_dir / "guard-audit.jsonl"
    named = parse_config({"guard": {"audit_log": "g/audit.jsonl",
                                    "audit_key_file": "/etc/herald/audit.key"}}, base=tmp_path)
    assert named.guard.log_path(named.data_dir) == tmp_path / "g" / "audit.jsonl"
    assert named.guard.audit_key_file == Path("/etc/herald/audit.key")
    for bad, where in (({"audit_log": ""}, "guard.audit_log"), ({"audit": "x"}, "guard.audit"),
                       ({"audit_log": 3}, "guard.audit_log")):
        with pytest.raises(ConfigError) as found:
            parse_config({"guard": bad}, base=tmp_path)
        assert found.value.path == where


def test_cluster_timings_default_to_the_lease_rules_and_are_settable() -> None:
    config = parse_config({})
    assert config.cluster.leases == LeaseSettings()  # 10 s lease, 3 s margin, 2 s renewals
    assert config.cluster.claim_lease == DispatchSettings().lease == 20.0
    fast = parse_config({"cluster": {"lease": 2, "margin": 0.5, "renew_every": 0.5,
                                     "claim_lease": 3}}).cluster  # fmt: skip
    assert fast.leases == LeaseSettings(lease=2.0, margin=0.5, renew_every=0.5)
    assert fast.claim_lease == 3.0


@pytest.mark.parametrize(("cluster", "message"), [
    ({"margin": 10}, "cluster: margin (10.0) must be shorter than lease (10.0)"),
    ({"lease": 2, "margin": 0.5}, "cluster: renew_every (2.0) must allow two renewals"),
    ({"claim_lease": 0}, "cluster.claim_lease: must be between 0.5 and 3600"),
    ({"lease_seconds": 5}, "cluster.lease_seconds: unknown setting"),
])  # fmt: skip
def test_each_cluster_mistake_is_named(cluster: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config({"cluster": cluster})
