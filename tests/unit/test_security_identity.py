"""SPIFFE workload identities (meshkit.security.identity)."""

from __future__ import annotations

import pytest

from meshkit.security.errors import InvalidIdentity
from meshkit.security.identity import Identity, check_trust_domain, parse_spiffe_id


@pytest.mark.parametrize(
    ("text", "identity"),
    [
        ("spiffe://cluster.local/ns/default/sa/bookinfo-reviews", Identity("cluster.local", "default", "bookinfo-reviews")),
        ("spiffe://example.org/ns/prod/sa/web", Identity("example.org", "prod", "web")),
        ("spiffe://my_domain-1.test/ns/a.b/sa/A_b-1", Identity("my_domain-1.test", "a.b", "A_b-1")),
        ("spiffe://td/ns/.../sa/x", Identity("td", "...", "x")),
    ],
    ids=[
        "the_default_trust_domain_parses",
        "another_trust_domain_parses",
        "underscores_dots_and_upper_case_path_characters_are_allowed",
        "three_dots_is_a_name_not_a_dot_segment",
    ],
)
def test_a_valid_spiffe_id_parses_to_its_parts_and_formats_back(text: str, identity: Identity) -> None:
    assert parse_spiffe_id(text) == identity
    assert identity.uri == text == str(identity)


def test_the_principal_is_the_id_without_its_scheme_as_istio_writes_it() -> None:
    assert Identity("cluster.local", "default", "sleep").principal == "cluster.local/ns/default/sa/sleep"


@pytest.mark.parametrize(
    "text",
    [
        "spiffe://td/ns/victim\x00evil/sa/x",
        "spiffe://td/ns/a\r\nX-Evil: 1/sa/x",
        "spiffe://td/ns/a\n/sa/x",
        "spiffe://td/ns/a\x7f/sa/x",
        "spiffe://td/ns/a\tb/sa/x",
        "spiffe://td/ns/a b/sa/x",
        "spiffe://td/ns/caf\u00e9/sa/x",
        "spiffe://t\u0131d/ns/a/sa/x",
        "spiffe://td/ns/%61/sa/x",
        "spiffe://td/ns/a%2fb/sa/x",
        "spiffe://td/ns//sa/x",
        "spiffe://td/ns/a/sa/x/",
        "spiffe://td/ns/./sa/x",
        "spiffe://td/ns/../sa/x",
        "spiffe://td/ns/a/sa/..",
        "SPIFFE://td/ns/a/sa/x",
        "Spiffe://td/ns/a/sa/x",
        "https://td/ns/a/sa/x",
        "spiffe:td/ns/a/sa/x",
        "spiffe://td/ns/a/sa/x?q=1",
        "spiffe://td/ns/a/sa/x#frag",
        "spiffe://user@td/ns/a/sa/x",
        "spiffe://td:8080/ns/a/sa/x",
        "spiffe://TD/ns/a/sa/x",
        "spiffe:///ns/a/sa/x",
        "spiffe://td",
        "spiffe://td/",
        "spiffe://td/ns/a",
        "spiffe://td/ns/a/sa/x/extra",
        "spiffe://td/namespace/a/sa/x",
        "spiffe://td/ns/a/serviceaccount/x",
        "spiffe://" + "a" * 256 + "/ns/a/sa/x",
        "spiffe://td/ns/" + "a" * 2040 + "/sa/x",
        "",
    ],
    ids=[
        "a_nul_byte",
        "cr_lf_header_injection",
        "a_bare_lf",
        "a_del_byte",
        "a_tab",
        "a_space",
        "a_non_ascii_letter_in_the_path",
        "a_non_ascii_letter_in_the_trust_domain",
        "percent_encoding_of_a_letter",
        "a_percent_encoded_slash",
        "an_empty_segment",
        "a_trailing_slash",
        "a_dot_segment",
        "a_dot_dot_segment",
        "a_dot_dot_service_account",
        "an_upper_case_scheme",
        "a_mixed_case_scheme",
        "another_scheme",
        "no_authority_slashes",
        "a_query",
        "a_fragment",
        "userinfo",
        "a_port",
        "an_upper_case_trust_domain",
        "an_empty_trust_domain",
        "no_path",
        "an_empty_path",
        "no_service_account",
        "an_extra_segment",
        "a_wrong_namespace_keyword",
        "a_wrong_service_account_keyword",
        "a_trust_domain_over_255_bytes",
        "an_id_over_2048_bytes",
        "nothing_at_all",
    ],
)
def test_a_spiffe_id_that_breaks_a_rule_is_refused(text: str) -> None:
    with pytest.raises(InvalidIdentity):
        parse_spiffe_id(text)


@pytest.mark.parametrize(
    ("trust_domain", "namespace", "service_account"),
    [
        ("cluster.local", "victim\x00evil", "sa"),
        ("cluster.local", "ns", "sa\r\n"),
        ("cluster.local", "", "sa"),
        ("cluster.local", "..", "sa"),
        ("cluster.local", "a/b", "sa"),
        ("Cluster.local", "ns", "sa"),
        ("", "ns", "sa"),
    ],
    ids=[
        "a_nul_in_the_namespace",
        "crlf_in_the_service_account",
        "an_empty_namespace",
        "a_dot_dot_namespace",
        "a_slash_in_the_namespace",
        "an_upper_case_trust_domain",
        "an_empty_trust_domain",
    ],
)
def test_an_identity_cannot_be_built_from_parts_the_parser_would_refuse(
    trust_domain: str, namespace: str, service_account: str
) -> None:
    with pytest.raises(InvalidIdentity):
        Identity(trust_domain, namespace, service_account)


def test_a_refusal_message_never_carries_the_control_bytes_it_refuses() -> None:
    with pytest.raises(InvalidIdentity) as caught:
        parse_spiffe_id("spiffe://td/ns/a\r\nX-Evil: 1/sa/x")
    assert "\r" not in str(caught.value) and "\n" not in str(caught.value)
    assert "\\r\\n" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "valid"),
    [("cluster.local", True), ("a_b-c.d", True), ("Cluster.local", False), ("td:80", False), ("", False)],
    ids=["the_default", "every_allowed_character", "upper_case", "a_port", "empty"],
)
def test_a_trust_domain_follows_the_spiffe_character_rules(name: str, valid: bool) -> None:
    if valid:
        assert check_trust_domain(name) == name
    else:
        with pytest.raises(InvalidIdentity):
            check_trust_domain(name)
