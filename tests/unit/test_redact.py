"""Secret-looking values are masked before container output reaches a notification."""

from __future__ import annotations

import time

import pytest

from remediator.core.redact import MASK, mask, redact


@pytest.mark.parametrize(("line", "secret"), [
    ("SMTP_PASSWORD=hunter2", "hunter2"),
    ("PAGERDUTY_ROUTING_KEY=R0123456789abcdef0123456789abcde", "R0123456789abcdef0123456789abcde"),
    ("GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnop"),
    ("DJANGO_SECRET_KEY='s3cr3t value'", "s3cr3t"),
    ("api_key: sk-live-123456", "sk-live-123456"),
    ('{"password": "p@ss word", "user": "bob"}', "p@ss word"),
    ("X-Auth-Token: abcdef123456", "abcdef123456"),
    ("Authorization: Bearer eyJhbGciOi.payload.signature", "eyJhbGciOi"),
    ("curl -H 'Authorization: Basic dXNlcjpwYXNz' http://app", "dXNlcjpwYXNz"),
    ("retrying with bearer abc123def456", "abc123def456"),
    ("key id AKIAIOSFODNN7EXAMPLE in use", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("posting to https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX failed",
     "T000/B000/XXXXXXXXXXXX"),
    ("db=postgres://admin:s3cr3tpw@db:5432/models", "s3cr3tpw"),
    ("https://prod.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sv=1.0&sig=ABCDEF123",
     "ABCDEF123"),
    ("slack token xoxb-1234567890-abcdefghij", "xoxb-1234567890"),
])
def test_secret_looking_values_are_masked(line: str, secret: str) -> None:
    redacted = redact(line)
    assert secret not in redacted
    assert MASK in redacted


@pytest.mark.parametrize("line", [
    "PATH=/usr/local/bin:/usr/bin",
    "MODEL_PATH=/app/models/best_model.pth",
    "PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:128",
    "Model keys: ['encoder', 'decoder']",
    "MONKEY=banana AUTHOR=me",
    "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "OSError: [Errno 28] No space left on device",
    "http://app-prod:8080/health",
])
def test_ordinary_output_is_kept(line: str) -> None:
    assert redact(line) == line


def test_env_dump_keeps_names_and_masks_values() -> None:
    env = "MODEL_NAME=int2\nSMTP_PASSWORD=hunter2\nTORCH_HOME=/root/.cache\n"
    assert redact(env) == "MODEL_NAME=int2\nSMTP_PASSWORD=***\nTORCH_HOME=/root/.cache\n"


def test_an_empty_value_does_not_swallow_the_next_line() -> None:
    assert redact("TOKEN=\nMODEL=int2") == "TOKEN=\nMODEL=int2"


def test_private_key_blocks_are_masked_whole() -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAKCAQEA\n-----END RSA PRIVATE KEY-----"
    assert "MIIEow" not in redact(f"found:\n{pem}\ndone")


def test_known_secrets_are_masked_even_without_a_pattern() -> None:
    assert redact("key is Qz9x-opaque-value here", known_secrets=["Qz9x-opaque-value"]) == (
        "key is *** here")


def test_mask_shows_enough_to_tell_secrets_apart() -> None:
    assert mask("https://hooks.slack.com/services/T0/B0/XXXX") == "https://hooks.slack.com/***"
    assert mask("http://127.0.0.1:8080/v2/enqueue") == "http://127.0.0.1:8080/***"
    assert mask("R0123456789abcdef0123456789abcdW") == "***bcdW"
    assert mask("hunter2") == "***"
    assert mask("") == ""
    assert mask(None) == ""


# Hostile inputs: each repeated to 200 KB, the shapes that made the old patterns rescan the
# rest of a run from every one of its positions (quadratic: 0.3 s at 2 KB, hours at 200 KB).
HOSTILE_UNITS = ["a-", "a.", "a-:", "a:", "a=", "-eyJ", "eyJaaaaaaaaa.", "a://", "a://b:",
                 "http://a", "password=\"", "key:'", "\"key\"", "x.y:", "-----BEGIN ",
                 "-----BEGIN RSA PRIVATE KEY-----", "?sig=", "bearer ", "authorization ",
                 "xoxb-", "ghp_", "a-a://", "a=\""]


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
def test_hostile_input_is_redacted_in_linear_time(unit: str) -> None:
    text = (unit * (200_000 // len(unit) + 1))[:200_000]
    started = time.perf_counter()
    redact(text)
    # Linear code takes well under 0.5 s here even on a busy machine; quadratic takes hours.
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize("unit", ["a-", "a.", "a-:", "x.y:", "a://", "/a/", "name= a-b; ",
                                  "a: b, "])
def test_long_separator_rich_text_is_kept_whole(unit: str) -> None:
    text = unit * 50_000
    assert redact(text) == text


def test_a_secret_deep_inside_long_text_is_still_masked() -> None:
    text = "a-" * 100_000 + " SMTP_PASSWORD=hunter2 " + "x.y:" * 50_000
    assert redact(text) == text.replace("hunter2", MASK)


def test_an_unclosed_quote_still_masks_the_value() -> None:
    assert redact("password='hunter2 and more") == "password='*** and more"


def test_a_cut_off_private_key_is_masked() -> None:
    pem = "log:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nQz9x"
    assert redact(pem) == "log:\n-----BEGIN RSA PRIVATE KEY----- ***"


def test_a_jwt_inside_a_dotted_run_is_masked_and_its_neighbours_kept() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXZhbHVl"
    assert redact(f"see a.b.{jwt}.tail") == "see a.b.***.tail"


def test_env_secrets_are_masked_by_name_and_restored_from_the_container() -> None:
    from remediator.core.redact import redact_env, unmask_env

    env = ["MODEL_PATH=/app/models/int8.pth", "DB_PASSWORD=hunter2",
           "DATABASE_URL=postgres://app:pw9@db/m", "PATH=/usr/bin"]
    masked = redact_env(env)
    assert masked == ["MODEL_PATH=/app/models/int8.pth", "DB_PASSWORD=***",
                      "DATABASE_URL=postgres://app:***@db/m", "PATH=/usr/bin"]
    # A rollback restores recorded plain values; secrets come from the running container.
    current = ["MODEL_PATH=/bad.pth", "DB_PASSWORD=rotated", "PATH=/usr/bin"]
    assert unmask_env(masked, current) == ["MODEL_PATH=/app/models/int8.pth",
                                           "DB_PASSWORD=rotated", "PATH=/usr/bin"]
