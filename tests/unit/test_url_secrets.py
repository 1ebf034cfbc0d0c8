"""The secret-bearing parts of a target URL, which are masked wherever they could appear."""

from __future__ import annotations

import base64

from forwarders.common import mask, url_secrets
from forwarders.webhook import WebhookConfig

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL = (
    "https://hook-user:p%40ss-w0rd@hooks.example.com/services/T0123ABCD/xK9fQ2mZ7pLw"
    "?sig=s1gn4ture&env=production&format=json&v=1"
)


def test_userinfo_and_the_basic_credential_built_from_it_are_secrets() -> None:
    """User, password (as written and decoded) and `Basic base64(user:pass)` are masked."""
    found = url_secrets(URL)
    basic = base64.b64encode(b"hook-user:p@ss-w0rd").decode()
    assert {"p@ss-w0rd", "hook-user:p%40ss-w0rd", basic, f"Basic {basic}"} <= set(found)
    assert "T0123ABCD" not in found  # a URL that is not a credential keeps its path


def test_a_credential_url_gives_its_key_like_path_segments_and_query_values() -> None:
    """A webhook URL's key-like segments and query values are secrets; words are not."""
    found = url_secrets(URL, whole=True)
    assert {URL, "T0123ABCD", "xK9fQ2mZ7pLw", "s1gn4ture"} <= set(found)
    for word in ("services", "production", "json", "1", "hook-user"):
        assert word not in found  # words would be blanked out of every log line


def test_an_echo_of_any_part_is_masked() -> None:
    """What an echoing target might say comes out with each secret part replaced."""
    config = WebhookConfig(name="hook", type="webhook", url=URL, secret=SECRET)
    basic = base64.b64encode(b"hook-user:p@ss-w0rd").decode()
    echo = (
        f"Cannot POST /services/T0123ABCD/xK9fQ2mZ7pLw (sig=s1gn4ture) Authorization: Basic {basic}"
    )
    masked = mask(echo, config.secrets())
    for part in ("T0123ABCD", "xK9fQ2mZ7pLw", "s1gn4ture", basic):
        assert part not in masked
    assert masked.startswith("Cannot POST /services/")


def test_a_credential_parameter_is_a_secret_whatever_its_value() -> None:
    """`token=` or `sig=` values are masked even when they look like words."""
    found = url_secrets("https://h.example.com/x?token=letmein&signature=abcdef", whole=True)
    assert {"letmein", "abcdef"} <= set(found)


def test_a_token_sent_as_the_user_name_is_a_secret() -> None:
    """`https://TOKEN@host/` (no password) masks the user name."""
    assert "ghp_abcdef" in url_secrets("https://ghp_abcdef@git.example.com/repo")


def test_a_plain_url_has_no_secrets() -> None:
    """Without userinfo a non-credential URL yields nothing."""
    assert url_secrets("https://grafana.example.com/api") == []
