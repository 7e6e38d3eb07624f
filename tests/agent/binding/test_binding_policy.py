"""The binding and sharing sections of the signed policy: defaults, values, located errors."""

from __future__ import annotations

import pytest

from agent.policy import PolicyError, parse_policy_body


def test_defaults_without_the_sections() -> None:
    body = parse_policy_body({})
    assert body.binding.token_ttl_s == 600 and body.binding.loopback_port == 0 and body.binding.allowed_origins == ()
    assert body.binding.hours_for("o1") is None
    assert body.sharing.response("other_outlet") == "alert" and body.sharing.other_outlet.learning_queries == 200


def test_values_are_read_and_origins_normalised() -> None:
    body = parse_policy_body({
        "binding": {"token_ttl_s": 300, "idle_signout_s": 0, "loopback_port": 47111,
                    "allowed_origins": ["https://Waybill.Example:443", "http://localhost:3000"],
                    "hours": {"default": {"start": "08:00", "end": "21:00"},
                              "outlets": {"o9": {"days": [6, 7], "start": "22:00", "end": "06:00",
                                                 "utc_offset_minutes": 420}}}},
        "sharing": {"max_accounts_per_device_hour": 5, "responses": {"other_outlet": "suspend"},
                    "other_outlet": {"multiplier": 2.5, "min_share": 0.1}},
    })
    binding = body.binding
    assert binding.allowed_origins == ("https://waybill.example", "http://localhost:3000")
    assert binding.hours_for("o1") == binding.default_hours and binding.hours_for("o9").days == (6, 7)
    assert body.sharing.response("other_outlet") == "suspend" and body.sharing.response("two_devices") == "alert"
    assert body.sharing.other_outlet.multiplier == 2.5


@pytest.mark.parametrize(("body", "where"), [
    ({"binding": {"token_ttl_s": 1}}, "body.binding.token_ttl_s"),
    ({"binding": {"colour": 1}}, "body.binding.colour"),
    ({"binding": {"allowed_origins": ["http://waybill.example"]}}, r"body.binding.allowed_origins\[0\]"),
    ({"binding": {"allowed_origins": ["https://w.example/path"]}}, r"body.binding.allowed_origins\[0\]"),
    ({"binding": {"hours": {"default": {"start": "8:00", "end": "20:00"}}}}, "body.binding.hours.default.start"),
    ({"binding": {"hours": {"outlets": {"o1": {"start": "08:00"}}}}}, "body.binding.hours.outlets.o1.end"),
    ({"binding": {"hours": {"default": {"start": "08:00", "end": "08:00"}}}}, "body.binding.hours.default"),
    ({"binding": {"hours": {"default": {"days": [0], "start": "08:00", "end": "09:00"}}}},
     r"body.binding.hours.default.days\[0\]"),
    ({"sharing": {"responses": {"other_outlet": "ban"}}}, "body.sharing.responses.other_outlet"),
    ({"sharing": {"responses": {"made_up": "alert"}}}, "body.sharing.responses.made_up"),
    ({"sharing": {"other_outlet": {"min_share": 2}}}, "body.sharing.other_outlet.min_share"),
    ({"sharing": {"max_accounts_per_device_hour": True}}, "body.sharing.max_accounts_per_device_hour"),
])
def test_every_error_names_its_field(body: dict, where: str) -> None:
    with pytest.raises(PolicyError, match=where.replace(".", r"\.").replace(r"\\", "\\")):
        parse_policy_body(body)
