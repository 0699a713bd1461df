"""Live tasks of notebooks 09 and 10: STRICT for one workload, GET only."""

from __future__ import annotations

from meshkit.lab import CLIENT, CallResult, Lab
from meshkit.quiz.tasks.base import LiveTask, TaskResult, failed, passed
from meshkit.quiz.tasks.mesh import bookinfo

LEGACY = "legacy/curl"


def outcome(result: CallResult) -> str:
    """What a caller got, in a few words: '200', '403', or 'refused (ConnectError)'."""
    return str(result.status) if not result.error else f"refused ({result.error.split(':')[0]})"


# -- 09: productpage refuses plaintext -------------------------------------------------


def strict_verdict(plaintext_page: str, mesh_page: str, plaintext_details: str) -> TaskResult:
    measured = {"plaintext_productpage": plaintext_page, "mtls_productpage": mesh_page, "plaintext_details": plaintext_details}
    if plaintext_page == "200":
        return failed("a plaintext call from legacy/curl (outside the mesh) to productpage still got 200", **measured)
    if mesh_page != "200":
        return failed(f"productpage refuses plaintext, but the mesh's own mTLS call from curl got {mesh_page}", **measured)
    if plaintext_details != "200":
        return failed(
            f"productpage refuses plaintext, but so does details (legacy/curl got {plaintext_details}): "
            "the task asks for productpage only",
            **measured,
        )
    return passed(f"plaintext to productpage: {plaintext_page}; mTLS from curl: 200; details still open to plaintext", **measured)


def check_strict(lab: Lab) -> TaskResult:
    return strict_verdict(
        outcome(lab.call("productpage.default", "/productpage", source=LEGACY)),
        outcome(lab.call("productpage.default", "/productpage")),
        outcome(lab.call("details.default", "/details/0", source=LEGACY)),
    )


def solve_strict(lab: Lab) -> None:
    lab.apply({
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "productpage-strict", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "productpage"}}, "mtls": {"mode": "STRICT"}},
    })


def setup_strict(lab: Lab) -> None:
    bookinfo(lab, inject=True)
    lab.deploy(CLIENT, namespace="legacy")


TASK_09 = LiveTask("09-productpage-strict", setup=setup_strict, check=check_strict, solve=solve_strict)


# -- 10: GET only -------------------------------------------------------------------------


def get_only_verdict(get: str, post: str, post_body: str) -> TaskResult:
    measured = {"get": get, "post": post}
    if post != "403":
        return failed(f"a POST to productpage got {post}; the task asks for 403", **measured)
    if get != "200":
        return failed(f"POST is refused, but a GET to productpage got {get} too; the task asks for 200", **measured)
    return passed(f"GET got 200 and POST got 403 ({post_body.strip()[:40]})", **measured)


def check_get_only(lab: Lab) -> TaskResult:
    post = lab.call("productpage", "/productpage", method="POST", body=b"{}")
    get = lab.call("productpage", "/productpage")
    return get_only_verdict(outcome(get), outcome(post), post.text)


def solve_get_only(lab: Lab) -> None:
    lab.apply({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "productpage-get-only", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "productpage"}},
            "action": "ALLOW",
            "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}],
        },
    })


TASK_10 = LiveTask("10-get-only", setup=lambda lab: bookinfo(lab, inject=True), check=check_get_only, solve=solve_get_only)

TASKS = (TASK_09, TASK_10)
