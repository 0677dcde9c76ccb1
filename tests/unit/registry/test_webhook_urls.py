"""The webhook URL guard on open-ended input: any text is a URL it accepts or INVALID_WEBHOOK_URL,
and an address is allowed only if it is a global unicast one."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from registry_service.domain.webhooks import (
    InvalidWebhookUrl,
    WebhookSettings,
    address_refusal,
    check_url,
    parse_url,
)

STRICT = WebhookSettings()


def _unresolvable(host: str, port: int) -> Sequence[str]:
    raise OSError("no DNS in unit tests")


@given(st.text(max_size=300) | st.from_regex(r"https?://[^/\s]{0,40}(/[^\s]{0,40})?", fullmatch=True))
def test_any_text_is_accepted_or_refused_naming_url(text: str) -> None:
    try:
        scheme, host, port = parse_url(text, STRICT)
    except InvalidWebhookUrl as refused:
        assert refused.reason == "INVALID_WEBHOOK_URL" and refused.metadata == {"field": "url"}
        return
    assert scheme == "https" and host and 0 <= port <= 65535


@given(st.ip_addresses())
def test_only_global_unicast_addresses_are_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    plain = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
    allowed = not address_refusal(str(ip), allow_private=False)
    # A 6to4 address is as reachable as the IPv4 it embeds.
    tunnelled = ip.sixtofour if isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour else plain
    assert allowed == (
        plain.is_global and tunnelled.is_global and not plain.is_multicast and not plain.is_reserved
    )
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    try:
        check_url(f"https://{host}/hook", STRICT, _unresolvable)
        accepted = True
    except InvalidWebhookUrl:
        accepted = False
    assert accepted == allowed
    # The operator's allowance admits private ranges, never multicast or unspecified ones.
    assert (not address_refusal(str(ip), allow_private=True)) == (
        not plain.is_multicast and not plain.is_unspecified
    )
