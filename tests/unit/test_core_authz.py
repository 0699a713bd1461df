"""AuthorizationPolicy decisions (meshkit.core.authz), with paths from meshkit.core.paths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from meshkit.config import canonical, load
from meshkit.core.authz import (
    Decision,
    Request,
    applicable_policies,
    authorize,
    compile_policies,
    policy_headers,
    split_host,
)
from meshkit.core.framing import Rejection
from meshkit.core.paths import normalize_target
from meshkit.errors import ConfigError

SLEEP = "cluster.local/ns/default/sa/sleep"
PRODUCTPAGE = "cluster.local/ns/default/sa/bookinfo-productpage"
INTRUDER = "cluster.local/ns/evil/sa/intruder"


def policy(name: str, action: str, *rules: dict[str, Any], namespace: str = "default",
           selector: dict[str, str] | None = None) -> dict[str, Any]:
    """A canonical AuthorizationPolicy (meshkit.config.canonical's shape)."""
    return {"kind": "AuthorizationPolicy", "namespace": namespace, "name": name,
            "spec": {"selector": selector, "action": action, "rules": list(rules)}}


def rule(sources: Sequence[dict[str, Any]] = (), operations: Sequence[dict[str, Any]] = (),
         when: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"from": list(sources), "to": list(operations), "when": list(when)}


SOURCE_KEYS = ("principals", "not_principals", "namespaces", "not_namespaces", "service_accounts", "not_service_accounts")


def source(**fields: list[str]) -> dict[str, list[str]]:
    return {key: fields.get(key, []) for key in SOURCE_KEYS}


def operation(**fields: list[Any]) -> dict[str, list[Any]]:
    keys = ("hosts", "not_hosts", "ports", "not_ports", "methods", "not_methods", "paths", "not_paths")
    return {key: fields.get(key, []) for key in keys}


def condition(key: str, values: Sequence[str] = (), not_values: Sequence[str] = ()) -> dict[str, Any]:
    return {"key": key, "values": list(values), "not_values": list(not_values)}


def request(path: str = "/", method: str = "GET", host: str = "reviews", port: int = 9080,
            headers: dict[str, str] | None = None, principal: str | None = SLEEP,
            namespace: str | None = "default") -> Request:
    return Request(path, method, host, port, headers or {}, principal, namespace)


def decide(policies: list[dict[str, Any]], req: Request) -> Decision:
    return authorize(compile_policies(policies), req)


# -- the algorithm ------------------------------------------------------------

DENY_ADMIN = policy("deny-admin", "DENY", rule(operations=[operation(paths=["/admin*"])]))
ALLOW_GET = policy("allow-get", "ALLOW", rule(operations=[operation(methods=["GET"])]))
ALLOW_NOTHING = policy("allow-nothing", "ALLOW")
ALLOW_ALL = policy("allow-all", "ALLOW", rule())
AUDIT_ALL = policy("audit-all", "AUDIT", rule())

ORDER = {
    "no_policy_allows": ([], request(), Decision(True, None, None)),
    "a_matching_deny_denies": ([DENY_ADMIN], request("/admin"), Decision(False, "default/deny-admin", "DENY")),
    "a_deny_that_does_not_match_and_no_allow_allows": ([DENY_ADMIN], request("/public"), Decision(True, None, None)),
    "deny_is_evaluated_before_allow": ([ALLOW_GET, DENY_ADMIN], request("/admin"), Decision(False, "default/deny-admin", "DENY")),
    "a_matching_allow_allows": ([ALLOW_GET], request(method="GET"), Decision(True, "default/allow-get", "ALLOW")),
    "an_allow_that_does_not_match_denies": ([ALLOW_GET], request(method="POST"), Decision(False, None, "ALLOW")),
    "allow_with_no_rules_is_allow_nothing": ([ALLOW_NOTHING], request(), Decision(False, None, "ALLOW")),
    "one_matching_allow_among_several_suffices": ([ALLOW_NOTHING, ALLOW_GET], request(), Decision(True, "default/allow-get", "ALLOW")),
    "an_empty_rule_allows_everything": ([ALLOW_ALL], request(method="DELETE"), Decision(True, "default/allow-all", "ALLOW")),
    "audit_alone_does_not_deny": ([AUDIT_ALL], request(), Decision(True, None, None, "default/audit-all")),
    "audit_does_not_stop_a_deny": ([AUDIT_ALL, DENY_ADMIN], request("/admin"), Decision(False, "default/deny-admin", "DENY", "default/audit-all")),
    "audit_does_not_count_as_an_allow_policy": ([AUDIT_ALL, ALLOW_NOTHING], request(), Decision(False, None, "ALLOW", "default/audit-all")),
    "of_two_matching_denies_the_first_by_name_is_reported": (
        [policy("z-deny", "DENY", rule()), policy("a-deny", "DENY", rule())], request(), Decision(False, "default/a-deny", "DENY")
    ),
}


@pytest.mark.parametrize("case", list(ORDER))
def test_istios_evaluation_order(case: str) -> None:
    policies, req, expected = ORDER[case]
    assert decide(policies, req) == expected


# -- callers: principals and namespaces ---------------------------------------

CALLERS = {
    "an_exact_principal_matches_that_caller": (source(principals=[SLEEP]), SLEEP, "default", True),
    "an_exact_principal_does_not_match_another": (source(principals=[SLEEP]), PRODUCTPAGE, "default", False),
    "a_prefix_principal_matches_the_namespace_tree": (source(principals=["cluster.local/ns/default/*"]), SLEEP, "default", True),
    "a_suffix_principal_matches_the_account_anywhere": (source(principals=["*/sa/sleep"]), SLEEP, "default", True),
    "a_star_principal_matches_any_mtls_caller": (source(principals=["*"]), INTRUDER, "evil", True),
    "a_star_principal_never_matches_plaintext": (source(principals=["*"]), None, None, False),
    "an_exact_principal_never_matches_plaintext": (source(principals=[SLEEP]), None, None, False),
    "not_principals_excludes_the_named_caller": (source(not_principals=[SLEEP]), SLEEP, "default", False),
    "not_principals_lets_other_callers_match": (source(not_principals=[SLEEP]), PRODUCTPAGE, "default", True),
    "not_principals_star_matches_only_plaintext": (source(not_principals=["*"]), None, None, True),
    "not_principals_star_does_not_match_mtls": (source(not_principals=["*"]), SLEEP, "default", False),
    "a_namespace_matches_callers_from_it": (source(namespaces=["default"]), SLEEP, "default", True),
    "a_namespace_does_not_match_other_namespaces": (source(namespaces=["default"]), INTRUDER, "evil", False),
    "a_namespace_never_matches_plaintext": (source(namespaces=["default"]), None, None, False),
    "a_namespace_claimed_without_a_principal_is_ignored": (source(namespaces=["default"]), None, "default", False),
    "not_namespaces_excludes_that_namespace": (source(not_namespaces=["evil"]), INTRUDER, "evil", False),
    "not_namespaces_lets_other_namespaces_match": (source(not_namespaces=["evil"]), SLEEP, "default", True),
    "principal_and_namespace_must_both_match": (source(principals=[SLEEP], namespaces=["prod"]), SLEEP, "default", False),
    "a_nul_after_a_victims_principal_never_matches_it": (
        source(principals=["cluster.local/ns/victim/sa/app"]), "cluster.local/ns/victim/sa/app\x00evil", "victim", False
    ),
    "a_nul_identity_never_matches_a_prefix_either": (
        source(principals=["cluster.local/ns/victim/*"]), "cluster.local/ns/victim\x00evil/sa/x", "victim", False
    ),
    "a_crlf_identity_never_matches_a_star": (source(principals=["*"]), "cluster.local/ns/a/sa/b\r\nx: y", "a", False),
    "a_namespace_with_a_nul_never_matches": (source(namespaces=["victim"]), "cluster.local/ns/victim/sa/x", "victim\x00", False),
    "a_service_account_matches_that_callers_principal": (source(service_accounts=["default/sleep"]), SLEEP, "default", True),
    "a_service_account_does_not_match_another_account": (source(service_accounts=["default/sleep"]), PRODUCTPAGE, "default", False),
    "a_service_account_is_namespaced": (source(service_accounts=["evil/sleep"]), SLEEP, "default", False),
    "a_service_account_matches_in_any_trust_domain": (source(service_accounts=["default/sleep"]), "example.org/ns/default/sa/sleep", "default", True),
    "a_service_account_is_exact_not_a_prefix": (source(service_accounts=["default/sleep"]), "cluster.local/ns/default/sa/sleeper", "default", False),
    "a_service_account_never_matches_plaintext": (source(service_accounts=["default/sleep"]), None, None, False),
    "a_service_account_never_matches_a_principal_of_another_form": (source(service_accounts=["default/sleep"]), "spiffe-ish/default/sleep", "default", False),
    "a_service_account_never_matches_a_nul_principal": (source(service_accounts=["default/sleep"]), SLEEP + "\x00", "default", False),
    "not_service_accounts_excludes_that_account": (source(not_service_accounts=["default/sleep"]), SLEEP, "default", False),
    "not_service_accounts_lets_other_accounts_match": (source(not_service_accounts=["default/sleep"]), PRODUCTPAGE, "default", True),
    "not_service_accounts_matches_plaintext": (source(not_service_accounts=["default/sleep"]), None, None, True),
}


@pytest.mark.parametrize("case", list(CALLERS))
def test_an_allow_policy_on_callers(case: str) -> None:
    from_, principal, namespace, matches = CALLERS[case]
    allow = policy("callers", "ALLOW", rule(sources=[from_]))
    assert decide([allow], request(principal=principal, namespace=namespace)).allowed is matches


@pytest.mark.parametrize("case", list(CALLERS))
def test_a_deny_policy_on_callers_denies_exactly_what_the_allow_would_allow(case: str) -> None:
    from_, principal, namespace, matches = CALLERS[case]
    deny = policy("callers", "DENY", rule(sources=[from_]))
    assert decide([deny], request(principal=principal, namespace=namespace)).allowed is not matches


def test_service_accounts_from_istio_yaml_match_the_callers_mtls_identity() -> None:
    """A bare NAME is read in the policy's namespace (canonical.py), as istiod reads it."""
    (allow,) = [canonical(r) for r in load("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: sleep-only, namespace: default}
spec:
  rules:
  - from:
    - source:
        serviceAccounts: ["sleep", "other/productpage"]
""")]
    assert decide([allow], request(principal=SLEEP)).allowed
    assert not decide([allow], request(principal=PRODUCTPAGE)).allowed
    assert decide([allow], request(principal="cluster.local/ns/other/sa/bookinfo-productpage")).allowed is False
    assert decide([allow], request(principal="cluster.local/ns/other/sa/productpage", namespace="other")).allowed


def test_a_rule_matches_when_any_of_its_sources_does() -> None:
    allow = policy("either", "ALLOW", rule(sources=[source(principals=[PRODUCTPAGE]), source(namespaces=["default"])]))
    assert decide([allow], request(principal=SLEEP, namespace="default")).allowed
    assert not decide([allow], request(principal=INTRUDER, namespace="evil")).allowed


def test_istios_deny_plaintext_policy_denies_plaintext_and_lets_mtls_through() -> None:
    deny_plaintext = policy("require-mtls", "DENY", rule(sources=[source(not_principals=["*"])]))
    assert decide([deny_plaintext], request(principal=None, namespace=None)) == Decision(False, "default/require-mtls", "DENY")
    assert decide([deny_plaintext], request()).allowed


# -- requests: methods and paths -----------------------------------------------

OPERATIONS = {
    "an_exact_method": (operation(methods=["GET"]), request(method="GET"), True),
    "another_method": (operation(methods=["GET"]), request(method="POST"), False),
    "methods_are_case_sensitive": (operation(methods=["GET"]), request(method="get"), False),
    "not_methods_excludes_the_method": (operation(not_methods=["DELETE"]), request(method="DELETE"), False),
    "not_methods_lets_others_match": (operation(not_methods=["DELETE"]), request(method="GET"), True),
    "an_exact_path": (operation(paths=["/productpage"]), request("/productpage"), True),
    "an_exact_path_does_not_match_a_longer_one": (operation(paths=["/productpage"]), request("/productpage/x"), False),
    "a_prefix_path": (operation(paths=["/api/*"]), request("/api/v1/products"), True),
    "a_prefix_path_needs_its_prefix": (operation(paths=["/api/*"]), request("/apiv1"), False),
    "a_suffix_path": (operation(paths=["*.css"]), request("/static/site.css"), True),
    "a_star_path_matches_any_path": (operation(paths=["*"]), request("/anything"), True),
    "paths_are_case_sensitive": (operation(paths=["/admin*"]), request("/Admin"), False),
    "not_paths_excludes_the_path": (operation(not_paths=["/health*"]), request("/healthz"), False),
    "method_and_path_must_both_match": (operation(methods=["GET"], paths=["/api/*"]), request("/api/x", "POST"), False),
    "a_port_in_the_list": (operation(ports=[9080]), request(port=9080), True),
    "a_port_not_in_the_list": (operation(ports=[9080]), request(port=15000), False),
    "not_ports_excludes_the_port": (operation(not_ports=[9080]), request(port=9080), False),
}


@pytest.mark.parametrize("case", list(OPERATIONS))
def test_an_allow_policy_on_requests(case: str) -> None:
    to, req, matches = OPERATIONS[case]
    assert decide([policy("ops", "ALLOW", rule(operations=[to]))], req).allowed is matches


@pytest.mark.parametrize("case", list(OPERATIONS))
def test_a_deny_policy_on_requests_denies_exactly_what_the_allow_would_allow(case: str) -> None:
    to, req, matches = OPERATIONS[case]
    assert decide([policy("ops", "DENY", rule(operations=[to]))], req).allowed is not matches


def test_a_rule_needs_its_caller_and_its_request_to_match() -> None:
    allow = policy("pp-get", "ALLOW", rule(sources=[source(principals=[PRODUCTPAGE])], operations=[operation(methods=["GET"])]))
    assert decide([allow], request(principal=PRODUCTPAGE)).allowed
    assert not decide([allow], request(principal=PRODUCTPAGE, method="POST")).allowed
    assert not decide([allow], request(principal=SLEEP)).allowed


# -- HARDENING: the path bypass matrix, through the normaliser -------------------

HARDENING_BYPASSES = [b"//admin", b"/./admin", b"/public/../admin", b"/public/%2e%2e/admin", b"/%2fadmin",
                      b"/%61dmin", b"\\admin", b"/admin;x=1", b"/admin#x"]
BYPASSES = HARDENING_BYPASSES + [b"/admin%2f", b"/%2e/admin", b"/public/..%5cadmin", b"/ADMIN/../admin"]
DENY_ADMIN_ALLOW_PUBLIC = [
    DENY_ADMIN,
    policy("allow-public", "ALLOW", rule(operations=[operation(paths=["/public*"])])),
]


def inbound(policies: list[dict[str, Any]], target: bytes) -> int:
    """What the inbound sidecar answers: 400 for a path it refuses, 403 when denied, 200 when allowed."""
    normalized = normalize_target(target)
    if isinstance(normalized, Rejection):
        return normalized.status
    return 200 if decide(policies, request(normalized.path)).allowed else 403


@pytest.mark.parametrize("target", BYPASSES, ids=[t.decode("latin-1") for t in BYPASSES])
def test_a_deny_on_admin_and_an_allow_on_public_hold_against(target: bytes) -> None:
    assert inbound(DENY_ADMIN_ALLOW_PUBLIC, target) in (400, 403)


@pytest.mark.parametrize("target", BYPASSES, ids=[t.decode("latin-1") for t in BYPASSES])
def test_an_allow_on_public_alone_holds_against(target: bytes) -> None:
    allow_public = [policy("allow-public", "ALLOW", rule(operations=[operation(paths=["/public*"])]))]
    assert inbound(allow_public, target) in (400, 403)


@pytest.mark.parametrize("target", HARDENING_BYPASSES, ids=[t.decode("latin-1") for t in HARDENING_BYPASSES])
def test_a_deny_on_the_exact_path_admin_holds_against(target: bytes) -> None:
    deny_exact = [policy("deny-admin", "DENY", rule(operations=[operation(paths=["/admin"])]))]
    assert inbound(deny_exact, target) in (400, 403)


def test_an_exact_path_does_not_cover_its_trailing_slash_form_so_deny_rules_want_a_prefix() -> None:
    deny_exact = [policy("deny-admin", "DENY", rule(operations=[operation(paths=["/admin"])]))]
    assert inbound(deny_exact, b"/admin/") == 200
    assert inbound([DENY_ADMIN], b"/admin/") == 403


@pytest.mark.parametrize("target", [b"/public", b"/public/page", b"/public/./page", b"/public/a/../b"])
def test_legitimate_public_paths_still_pass(target: bytes) -> None:
    assert inbound(DENY_ADMIN_ALLOW_PUBLIC, target) == 200


# -- HARDENING: hosts ---------------------------------------------------------------

HOST = "reviews.default.svc.cluster.local"
HOSTS = {
    "the_exact_host": (HOST, [HOST], True),
    "upper_case": ("REVIEWS.Default.svc.cluster.local", [HOST], True),
    "a_port_suffix": (f"{HOST}:9080", [HOST], True),
    "a_trailing_dot": (f"{HOST}.", [HOST], True),
    "a_trailing_dot_and_a_port_in_mixed_case": ("Reviews.Default.Svc.Cluster.Local.:9080", [HOST], True),
    "surrounding_whitespace": (f" {HOST} ", [HOST], True),
    "a_policy_host_in_upper_case_with_a_trailing_dot": (HOST, ["REVIEWS.default.svc.cluster.local."], True),
    "another_host": ("ratings.default.svc.cluster.local", [HOST], False),
    "a_host_that_only_starts_the_same": (f"{HOST}.evil.example", [HOST], False),
    "a_policy_host_with_a_port_matches_that_port": (f"{HOST}:9080", [f"{HOST}:9080"], True),
    "a_policy_host_with_a_port_refuses_another_port": (f"{HOST}:9081", [f"{HOST}:9080"], False),
    "a_policy_host_with_a_port_refuses_no_port": (HOST, [f"{HOST}:9080"], False),
    "a_suffix_host_in_another_case": ("API.Example.COM", ["*.example.com"], True),
    "an_ipv6_literal_with_a_port": ("[::1]:9080", ["[::1]"], True),
}


@pytest.mark.parametrize("case", list(HOSTS))
def test_a_deny_on_a_host_holds_across_case_port_and_trailing_dot(case: str) -> None:
    host, hosts, matches = HOSTS[case]
    deny = policy("deny-host", "DENY", rule(operations=[operation(hosts=hosts)]))
    assert decide([deny], request(host=host)).allowed is not matches


def test_not_hosts_compares_the_same_way() -> None:
    allow = policy("not-reviews", "ALLOW", rule(operations=[operation(not_hosts=[HOST])]))
    assert not decide([allow], request(host="REVIEWS.default.svc.cluster.local.:9080")).allowed
    assert decide([allow], request(host="ratings")).allowed


@pytest.mark.parametrize(
    ("authority", "split"),
    [("reviews", ("reviews", None)), ("Reviews:9080", ("reviews", 9080)), ("reviews.:80", ("reviews", 80)),
     ("[::1]:80", ("[::1]", 80)), ("[::1]", ("[::1]", None))],
    ids=["a_bare_name", "a_name_and_port", "a_trailing_dot_and_port", "an_ipv6_literal_and_port", "an_ipv6_literal"],
)
def test_a_host_header_splits_into_a_lower_case_name_and_a_port(authority: str, split: tuple[str, int | None]) -> None:
    assert split_host(authority) == split


# -- conditions ----------------------------------------------------------------------

CONDITIONS = {
    "a_header_value": (condition("request.headers[x-user]", ["alice"]), request(headers={"x-user": "alice"}), True),
    "another_header_value": (condition("request.headers[x-user]", ["alice"]), request(headers={"x-user": "bob"}), False),
    "a_missing_header": (condition("request.headers[x-user]", ["*"]), request(), False),
    "a_header_present_with_any_value": (condition("request.headers[x-user]", ["*"]), request(headers={"x-user": "x"}), True),
    "a_header_name_in_another_case": (condition("request.headers[X-User]", ["alice"]), request(headers={"x-user": "alice"}), True),
    "a_header_in_not_values": (condition("request.headers[x-user]", not_values=["bob"]), request(headers={"x-user": "bob"}), False),
    "a_missing_header_is_not_in_not_values": (condition("request.headers[x-user]", not_values=["bob"]), request(), True),
    "a_header_prefix": (condition("request.headers[x-user]", ["adm*"]), request(headers={"x-user": "admin"}), True),
    "source_principal": (condition("source.principal", [SLEEP]), request(), True),
    "source_principal_of_plaintext": (condition("source.principal", ["*"]), request(principal=None, namespace=None), False),
    "source_principal_with_a_nul": (condition("source.principal", [SLEEP + "*"]), request(principal=SLEEP + "\x00"), False),
    "source_namespace": (condition("source.namespace", ["default"]), request(), True),
    "source_namespace_of_plaintext": (condition("source.namespace", ["default"]), request(principal=None), False),
    "destination_port": (condition("destination.port", ["9080"]), request(port=9080), True),
    "another_destination_port": (condition("destination.port", ["9080"]), request(port=9090), False),
}


@pytest.mark.parametrize("case", list(CONDITIONS))
def test_a_when_condition(case: str) -> None:
    when, req, matches = CONDITIONS[case]
    assert decide([policy("when", "ALLOW", rule(when=[when]))], req).allowed is matches


def test_every_when_condition_of_a_rule_must_match() -> None:
    allow = policy("both", "ALLOW", rule(when=[condition("source.namespace", ["default"]), condition("destination.port", ["80"])]))
    assert not decide([allow], request(port=9080)).allowed
    assert decide([allow], request(port=80)).allowed


def test_a_condition_key_meshkit_does_not_implement_is_refused_when_compiling() -> None:
    with pytest.raises(ConfigError, match="not implemented") as caught:
        compile_policies([policy("jwt", "ALLOW", rule(when=[condition("request.auth.claims[iss]", ["x"])]))])
    assert caught.value.path == "spec.rules[0].when[0].key"


def test_a_custom_action_is_refused_when_compiling_rather_than_ignored() -> None:
    with pytest.raises(ConfigError, match="not implemented"):
        compile_policies([policy("ext", "CUSTOM", rule())])


def test_repeated_headers_are_joined_with_commas_under_lower_case_names() -> None:
    headers = [(b"X-User", b"a"), (b"x-user", b"b"), (b"Accept", b"*/*")]
    assert policy_headers(headers) == {"x-user": "a,b", "accept": "*/*"}


# -- which policies apply --------------------------------------------------------------


def test_the_policies_of_a_workload_are_its_namespaces_and_the_root_namespaces_that_select_it() -> None:
    policies = [
        policy("ns-wide", "ALLOW"),
        policy("for-reviews", "ALLOW", selector={"app": "reviews"}),
        policy("for-ratings", "ALLOW", selector={"app": "ratings"}),
        policy("other-ns", "ALLOW", namespace="prod"),
        policy("mesh-wide", "DENY", namespace="istio-system"),
        policy("mesh-reviews", "DENY", namespace="istio-system", selector={"app": "reviews"}),
        policy("mesh-ratings", "DENY", namespace="istio-system", selector={"app": "ratings"}),
    ]
    chosen = applicable_policies(policies, "default", {"app": "reviews"})
    assert [p["name"] for p in chosen] == ["ns-wide", "for-reviews", "mesh-wide", "mesh-reviews"]


# -- Istio's own YAML, through the config loader -------------------------------------------

ISTIO_TASK = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-nothing
  namespace: default
spec:
  {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: productpage-viewer
  namespace: default
spec:
  selector:
    matchLabels:
      app: productpage
  action: ALLOW
  rules:
  - to:
    - operation:
        methods: ["GET"]
"""


def test_istios_http_traffic_task_allows_get_on_productpage_and_denies_the_rest() -> None:
    policies = [canonical(resource) for resource in load(ISTIO_TASK)]
    for_productpage = compile_policies(applicable_policies(policies, "default", {"app": "productpage"}))
    for_reviews = compile_policies(applicable_policies(policies, "default", {"app": "reviews"}))
    assert authorize(for_productpage, request("/productpage", "GET")) == Decision(True, "default/productpage-viewer", "ALLOW")
    assert authorize(for_productpage, request("/productpage", "POST")) == Decision(False, None, "ALLOW")
    assert authorize(for_reviews, request("/reviews/0", "GET")) == Decision(False, None, "ALLOW")
