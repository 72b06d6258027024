"""Bad input gets a 4xx with a JSON body naming the problem: never a 500, never a partial write."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest

from events.models import Event
from tests.events.helpers import cloudevent

pytestmark = pytest.mark.django_db(transaction=True)


def raw_post(api, body: bytes | str, content_type="application/json", path="/api/v1/events", **extra):
    return api.generic("POST", path, body, content_type=content_type, **extra)


def assert_refused(response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"error", "message"}
    for word in words:
        assert word in json.dumps(body), (word, body)
    assert Event.objects.count() == 0, "nothing may be written"
    return body


EVENT = json.dumps(cloudevent())[:-1]  # to splice raw JSON values into


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", ["invalid JSON"]),
        (b"", ["empty"]),
        (EVENT + ', "data": NaN}', ["NaN"]),
        (EVENT + ', "data": [Infinity]}', ["Infinity"]),
        (EVENT + ', "data": -Infinity}', ["Infinity"]),
        (EVENT + ', "data": ' + "9" * 5000 + "}", ["64-bit"]),
        (EVENT + ', "data": 9223372036854775808}', ["64-bit"]),
        (EVENT + ', "data": 1e999}', ["too large"]),
        (EVENT + ', "data": "a\\u0000b"}', ["\\\\u0000", "/data"]),
        (EVENT + ', "data": {"k\\u0000": 1}}', ["\\\\u0000", "key"]),
        (EVENT + ', "data": "\\ud800"}', ["surrogate"]),
        (b'{"a": "\xff"}', ["UTF-8"]),
        (EVENT + ', "data": ' + "[" * 100_000 + "]" * 100_000 + "}", ["nested"]),
        (EVENT + ', "data": ' + "[" * 100 + "]" * 100 + "}", ["nested"]),
        (b"42", ["JSON object"]),
    ],
    ids=[
        "invalid",
        "empty",
        "nan",
        "infinity",
        "minus-infinity",
        "5000-digits",
        "int64-overflow",
        "float-overflow",
        "nul-in-string",
        "nul-in-key",
        "lone-surrogate",
        "bad-utf8",
        "deep-100000",
        "deep-100",
        "not-an-object",
    ],
)
def test_malformed_bodies(api, body, words):
    assert_refused(raw_post(api, body), 400, *words)


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"id": None}, 400, ["/id", "missing"]),
        ({"source": None}, 400, ["/source"]),
        ({"type": None}, 400, ["/type"]),
        ({"specversion": None}, 400, ["/specversion"]),
        ({"specversion": "0.3"}, 400, ["/specversion", "1.0"]),
        ({"id": ""}, 400, ["/id", "empty"]),
        ({"type": 7}, 400, ["/type", "string"]),
        ({"time": "yesterday"}, 400, ["/time", "RFC 3339"]),
        ({"time": "2026-02-30T10:00:00Z"}, 400, ["/time"]),
        ({"position": 5}, 400, ["/position", "server"]),
        ({"stream": "x"}, 400, ["/stream", "server"]),
        ({"Bad-Name": "x"}, 400, ["Bad-Name", "lowercase"]),
        ({"nested": {"a": 1}}, 400, ["/nested", "extension"]),
        ({"data": 1, "data_base64": "AA=="}, 400, ["data_base64"]),
        ({"data_base64": "!!"}, 400, ["base64"]),
        ({"executionid": "a b"}, 400, ["stream name"]),
        ({"id": "x" * 3000}, 400, ["/id", "longer"]),
        # past year 9999 (or before year 1) once in UTC, which datetime cannot hold
        ({"time": "9999-12-31T23:59:59-01:00"}, 400, ["/time", "9999"]),
        ({"time": "0001-01-01T00:00:00+01:00"}, 400, ["/time", "9999"]),
        # digits of other scripts, which \d takes and fromisoformat may not
        ({"time": "\uff12\uff10\uff12\uff16-01-01T00:00:00Z"}, 400, ["/time", "RFC 3339"]),
        ({"dataschema": "http://[::1/api/v1/schemas/a.b/versions/1"}, 400, ["/dataschema", "URI"]),
        ({"executionid": "a\n"}, 400, ["stream name"]),
        ({"foo\n": "x"}, 400, ["lowercase"]),
    ],
)
def test_invalid_events(api, change, status, words):
    event = {**cloudevent(), **change}
    event = {k: v for k, v in event.items() if v is not None}
    assert_refused(raw_post(api, json.dumps(event)), status, *words)


def test_one_bad_event_refuses_the_whole_batch(api):
    batch = [cloudevent(), cloudevent(), {**cloudevent(), "specversion": "2.0"}]
    assert_refused(raw_post(api, json.dumps(batch)), 400, "/2/specversion")


def test_batch_limits(api, settings):
    settings.MAX_BATCH_EVENTS = 3
    assert_refused(raw_post(api, json.dumps([cloudevent() for _ in range(4)])), 400, "at most 3")
    assert_refused(raw_post(api, "[]"), 400, "empty")
    assert_refused(raw_post(api, "{}", content_type="application/cloudevents-batch+json"), 400, "array")
    same = cloudevent()
    assert_refused(raw_post(api, json.dumps([same, same])), 400, "twice")


def test_unsupported_media_type(api):
    assert_refused(raw_post(api, "x", content_type="text/plain"), 415, "Content-Type")


def test_json_in_another_charset_than_utf8_is_refused(api):
    """JSON is UTF-8; a body declared otherwise would be read wrong."""
    event = json.dumps(cloudevent())
    assert_refused(raw_post(api, event, content_type="application/json; charset=utf-16"), 415, "UTF-8")
    binary = {"HTTP_CE_SPECVERSION": "1.0", "HTTP_CE_ID": "b", "HTTP_CE_SOURCE": "/s", "HTTP_CE_TYPE": "t.x"}
    assert_refused(raw_post(api, b"{}", content_type="application/json; charset=latin-1", **binary), 415)
    assert_refused(raw_post(api, b"caf\xe9", content_type="text/plain; charset=iso-8859-1", **binary), 415)
    body = '{"name": "s-1"}'
    for path in ("/api/v1/streams", "/api/v1/subscriptions"):
        assert_refused(
            raw_post(api, body, content_type="application/json;charset=ISO-8859-1", path=path), 415
        )
    response = raw_post(api, event, content_type='application/cloudevents+json; charset="UTF-8"')
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("limit=0", ["limit"]),
        ("limit=100000", ["limit"]),
        ("limit=abc", ["limit", "integer"]),
        ("after=-1", ["after"]),
        ("after=" + "9" * 30, ["after"]),
        ("since=not-a-time", ["since"]),
        ("types=task.started", ["unknown", "types"]),
        ("min_position=x", ["min_position"]),
        ("format=xml", ["unknown", "format"]),  # not a renderer switch
        ("type=task*started", ["type", "wildcard"]),
        ("type=" + ",".join(f"t{i}" for i in range(101)), ["type", "at most 100"]),
    ],
)
def test_bad_query_parameters(api, query, words):
    assert_refused(api.get(f"/api/v1/events?{query}"), 400, *words)


@pytest.mark.parametrize("version", ["soon", "%C2%B2", "%EF%BC%91", "9" * 5000, "-1"])
def test_bad_expected_version(api, version):
    """``²`` is a digit to ``str.isdigit`` and not to ``int``; a fullwidth one is a digit to both,
    and refused all the same (versions are ASCII digits); 5000 digits are past what ``int`` takes."""
    for path in (
        f"/api/v1/events?expected_version={version}",
        f"/api/v1/streams/s-1/events?expected_version={version}",
    ):
        assert_refused(raw_post(api, json.dumps(cloudevent()), path=path), 400, "expected_version")


def test_bad_stream_names(api):
    assert_refused(
        raw_post(api, json.dumps(cloudevent()), path="/api/v1/events?stream=a%20b"), 400, "stream name"
    )
    assert_refused(raw_post(api, json.dumps(cloudevent()), path="/api/v1/events?colour=red"), 400, "colour")
    # `$` in a pattern also matches before a final newline
    assert_refused(
        raw_post(api, json.dumps(cloudevent()), path="/api/v1/events?stream=abc%0A"), 400, "stream name"
    )
    assert_refused(
        raw_post(api, json.dumps(cloudevent()), path="/api/v1/streams/abc%0A/events"), 400, "stream name"
    )
    assert_refused(raw_post(api, '{"name": "abc\\n"}', path="/api/v1/streams"), 400, "stream name")


def test_unknown_ids_and_streams(api):
    assert_refused(api.get("/api/v1/events/unknown"), 404, "unknown")
    assert_refused(api.get("/api/v1/streams/unknown"), 404, "unknown")
    assert_refused(api.get("/api/v1/streams/unknown/events"), 404, "unknown")
    assert_refused(api.get("/api/v1/nothing-here"), 404, "no route")


def test_stale_expected_version(api):
    raw_post(api, json.dumps(cloudevent()), path="/api/v1/streams/s-1/events")
    response = raw_post(api, json.dumps(cloudevent()), path="/api/v1/streams/s-1/events?expected_version=3")
    assert response.status_code == 409
    assert response.json()["actual_version"] == 0 and response.json()["expected_version"] == "3"


def test_bad_stream_bodies(api):
    for body, words in [
        ("[]", ["object"]),
        ('{"name": 5}', ["name"]),
        ('{"name": "ok-1", "colour": "red"}', ["colour"]),
        ('{"name": "ok-1", "max_age": -5}', ["max_age"]),
        ('{"name": "ok-1", "metadata": [1]}', ["metadata"]),
        ('{"name": "bad name"}', ["stream name"]),
        ("{oops", ["JSON"]),
    ]:
        assert_refused(raw_post(api, body, path="/api/v1/streams"), 400, *words)
    assert_refused(raw_post(api, '{"name": "ok-1"}', path="/api/v1/streams?colour=red"), 400, "colour")


def test_body_limit_on_the_real_server_with_and_without_content_length(live_server_factory):
    server = live_server_factory(AUTH_REQUIRED="false", MAX_BODY_BYTES="2048")
    big = json.dumps({**cloudevent(), "data": "x" * 5000}).encode()
    declared = httpx.post(
        server.url + "/api/v1/events", content=big, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413 and declared.json()["error"] == "payload_too_large"

    def chunks():
        for start in range(0, len(big), 500):
            yield big[start : start + 500]

    chunked = httpx.post(
        server.url + "/api/v1/events", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413 and chunked.json()["limit"] == 2048
    small = httpx.post(server.url + "/api/v1/events", json=cloudevent())
    assert small.status_code == 201
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/streams/a%00b/events", 404),
        ("get", "/api/v1/streams/%00", 404),
        ("delete", "/api/v1/streams/%00", 404),
        ("get", "/api/v1/events/%00", 404),
        ("get", "/api/v1/events?limit=%C2%B2", 400),
        ("get", "/api/v1/events?after=%EF%BC%91", 400),
        ("get", "/api/v1/events?type=%00", 400),
        ("get", "/api/v1/streams/" + "x" * 300, 404),
    ],
)
def test_paths_and_parameters_no_stream_or_number_can_have(admin_api, method, path, status):
    assert_refused(getattr(admin_api, method)(path), status)


def test_nul_in_binary_mode_is_refused(api):
    headers = {"HTTP_CE_SPECVERSION": "1.0", "HTTP_CE_SOURCE": "/s", "HTTP_CE_TYPE": "t.x"}
    in_header = raw_post(api, b"{}", HTTP_CE_ID="b%00", **headers)
    assert_refused(in_header, 400, "/id", "u0000")
    in_extension = raw_post(api, b"{}", HTTP_CE_ID="b1", HTTP_CE_TRACE="a%00", **headers)
    assert_refused(in_extension, 400, "/trace")
    in_text = raw_post(api, b"a\x00b", content_type="text/plain", HTTP_CE_ID="b2", **headers)
    assert_refused(in_text, 400, "/data")


def test_binary_mode_takes_the_data_from_the_body_only(api):
    headers = {"HTTP_CE_SPECVERSION": "1.0", "HTTP_CE_ID": "b", "HTTP_CE_SOURCE": "/s", "HTTP_CE_TYPE": "t.x"}
    assert_refused(raw_post(api, b"", HTTP_CE_DATA="x", **headers), 400, "ce-data", "body")
    assert_refused(raw_post(api, b"{}", HTTP_CE_DATA_BASE64="AA==", **headers), 400, "ce-data_base64")


def test_an_extension_may_be_named_like_a_column_of_the_row(api):
    """``hash`` (and ``extensions``) are names the append function's row also uses."""
    event = {**cloudevent(), "hash": "x", "extensions": "y"}
    for body in (event, [{**event, "id": "batch-1"}, {**event, "id": "batch-2"}]):
        response = raw_post(api, json.dumps(body))
        assert response.status_code == 201, response.content
        again = raw_post(api, json.dumps(body))
        assert again.status_code == 200, again.content  # the same event: the hash matches
    stored = api.get(f"/api/v1/events/{event['id']}").json()
    assert (stored["hash"], stored["extensions"]) == ("x", "y")


def test_values_too_long_to_index_are_a_400_naming_them(api):
    """Attributes are checked in characters (2048); PostgreSQL's index entries hold ~2.7 kB."""
    event = {**cloudevent(), "id": secrets.token_urlsafe(1536), "source": secrets.token_urlsafe(1536)}
    assert_refused(raw_post(api, json.dumps(event)), 400, "source and id", "too long to be indexed")
    # 2,000 random CJK characters: 6,000 bytes that PostgreSQL cannot compress under the limit
    # (emoji share three of their four bytes and sometimes compress enough to fit).
    wide = "".join(chr(0x4E00 + secrets.randbelow(20_000)) for _ in range(2000))
    batch = [cloudevent(), {**cloudevent(), "type": wide + ".x"}]
    refused = raw_post(api, json.dumps(batch), path="/api/v1/events?stream=wide-1")
    assert_refused(refused, 400, "type", "too long to be indexed")
