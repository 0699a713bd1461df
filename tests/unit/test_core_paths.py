"""Path normalisation for policy matching (meshkit.core.paths)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshkit.core import paths
from meshkit.core.framing import Rejection
from meshkit.core.paths import NormalizedPath, normalize_target, remove_dot_segments

# HARDENING (authorization): every way of writing /admin that a server might
# resolve to /admin either becomes /admin (so a policy on /admin* sees it) or is refused.
ADMIN_BYPASSES = {
    "a_double_slash": (b"//admin", "/admin"),
    "a_dot_segment": (b"/./admin", "/admin"),
    "a_dot_dot_out_of_public": (b"/public/../admin", "/admin"),
    "percent_encoded_dots": (b"/public/%2e%2e/admin", "/admin"),
    "upper_case_percent_encoded_dots": (b"/public/%2E%2E/admin", "/admin"),
    "an_encoded_slash": (b"/%2fadmin", "/admin"),
    "an_upper_case_encoded_slash": (b"/%2Fadmin", "/admin"),
    "an_encoded_letter": (b"/%61dmin", "/admin"),
    "a_backslash": (b"\\admin", "/admin"),
    "an_encoded_backslash": (b"/%5cadmin", "/admin"),
    "a_backslash_dot_dot": (b"/public\\..\\admin", "/admin"),
    "dot_dot_above_the_root": (b"/../../admin", "/admin"),
    "encoded_dot_dot_slash": (b"/public/..%2fadmin", "/admin"),
}


@pytest.mark.parametrize("case", list(ADMIN_BYPASSES))
def test_a_disguised_admin_path_normalises_to_admin_and_the_app_receives_that(case: str) -> None:
    target, expected = ADMIN_BYPASSES[case]
    result = normalize_target(target)
    assert result == NormalizedPath(expected, expected.encode())


REFUSED = {
    "a_path_parameter": b"/admin;x=1",
    "a_path_parameter_after_a_slash": b"/admin/;x=1",
    "a_fragment": b"/admin#x",
    "a_fragment_after_the_query": b"/admin?a=1#x",
    "an_encoded_nul": b"/admin%00",
    "a_lone_percent": b"/admin%",
    "a_percent_with_one_hex_digit": b"/admin%2",
    "a_percent_with_non_hex_digits": b"/admin%zz",
    "a_raw_nul": b"/admin\x00",
    "a_raw_cr_lf": b"/admin\r\nX: 1",
    "a_space": b"/ad min",
    "a_non_ascii_byte": b"/adm\xc3\xadn",
    "a_relative_path": b"admin",
    "an_empty_target": b"",
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_path_with_no_single_reading_is_refused_with_400(case: str) -> None:
    result = normalize_target(REFUSED[case])
    assert isinstance(result, Rejection) and result.status == 400


@pytest.mark.parametrize(
    ("target", "path", "forwarded"),
    [
        (b"/", "/", b"/"),
        (b"/productpage", "/productpage", b"/productpage"),
        (b"/reviews/0?user=jason", "/reviews/0", b"/reviews/0?user=jason"),
        (b"/a/b/", "/a/b/", b"/a/b/"),
        (b"/a/.", "/a/", b"/a/"),
        (b"/a/..", "/", b"/"),
        (b"/a/%7euser", "/a/~user", b"/a/~user"),
        (b"/a%20b", "/a%20b", b"/a%20b"),
        (b"/a%3bb", "/a%3Bb", b"/a%3Bb"),
        (b"/a%3fb", "/a%3Fb", b"/a%3Fb"),
        (b"/%252e%252e/admin", "/%252e%252e/admin", b"/%252e%252e/admin"),
        (b"/public///..//admin", "/public/admin", b"/public/admin"),
        (b"/Admin", "/Admin", b"/Admin"),
        (b"/x?next=/../admin;#", None, None),
        (b"/x?next=/../admin;", "/x", b"/x?next=/../admin;"),
        (b"*", "*", b"*"),
        (b"/...", "/...", b"/..."),
    ],
    ids=[
        "the_root_stays_the_root",
        "a_plain_path_is_unchanged",
        "the_query_is_forwarded_but_not_matched",
        "a_trailing_slash_is_kept",
        "a_final_dot_leaves_a_trailing_slash",
        "a_final_dot_dot_climbs_to_the_root",
        "an_encoded_tilde_is_decoded_as_unreserved",
        "an_encoded_space_stays_encoded",
        "an_encoded_semicolon_stays_encoded_in_upper_case",
        "an_encoded_question_mark_stays_encoded",
        "double_encoding_is_decoded_only_once",
        "slashes_are_merged_after_dot_segments_are_resolved_in_istios_order",
        "case_is_significant",
        "a_fragment_in_the_query_is_still_refused",
        "dots_and_semicolons_in_the_query_are_left_alone",
        "the_asterisk_of_options_passes",
        "three_dots_are_a_name",
    ],
)
def test_normalisation_table(target: bytes, path: str | None, forwarded: bytes | None) -> None:
    result = normalize_target(target)
    if path is None:
        assert isinstance(result, Rejection)
    else:
        assert result == NormalizedPath(path, forwarded)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a/b/c/./../../g", "/a/g"),
        ("/mid/content=5/../6", "/mid/6"),
        ("/a/b/..", "/a/"),
        ("/./", "/"),
        ("/..", "/"),
        ("/a//../b", "/a/b"),
    ],
    ids=["rfc3986_example_one", "rfc3986_example_two", "dot_dot_at_the_end", "dot_slash", "dot_dot_at_the_root", "empty_segment_then_dot_dot"],
)
def test_dot_segments_are_removed_as_rfc_3986_section_5_2_4_says(path: str, expected: str) -> None:
    assert remove_dot_segments(path) == expected


_PATH_BYTES = st.sampled_from([b"/", b".", b"..", b"%2e", b"%2f", b"%5c", b"\\", b"a", b"admin", b"%61", b"%25", b"~", b"-"])


@given(st.lists(_PATH_BYTES, max_size=12))
def test_normalising_a_normalised_path_changes_nothing(pieces: list[bytes]) -> None:
    first = normalize_target(b"/" + b"".join(pieces))
    if isinstance(first, Rejection):
        return
    assert normalize_target(first.target) == first
    assert "//" not in first.path and "/./" not in first.path and "/../" not in first.path
    assert not first.path.endswith(("/.", "/.."))


# --- the fast path for paths already in normal form agrees with the general route ----------------

FAST_PATH_TARGETS = [
    b"/",
    b"/reviews/0",
    b"/api/v1/items/42?x=1",
    b"/a/b/",
    b"/a-b_c.d~e/f!$&'()*+,=:@",
    b"/productpage?u=normal",
    b"/x?",
    b"/x??y",
    b"/x?a=/../b;c",
    b"/x?a=%zz",
    b"/x?a=1#f",
    b"/x?a b",
    b"/x?a\x00",
    b"/.well-known/x",
    b"/a.b/c.",
    b"/a/.",
    b"/a/..",
    b"/a//b",
    b"//",
    b"/a;b",
    b"/a%41",
    b"/a\\b",
    b"/a\"b",
    b"/a<b>",
    b"/a[1]",
    b"/a{b}|c^d`e",
    b"/caf\xc3\xa9",
    b"?x=1",
    b"x/y",
    b"*",
    b"",
]


@pytest.mark.parametrize("target", FAST_PATH_TARGETS)
def test_fast_path_agrees_with_the_general_route(target: bytes) -> None:
    assert normalize_target(target) == paths._normalize_any_target(target)


@pytest.mark.parametrize(
    "target",
    [t for t, _ in ADMIN_BYPASSES.values()] + list(REFUSED.values()),
    ids=[*ADMIN_BYPASSES, *REFUSED],
)
def test_hardening_paths_are_judged_alike_by_both_routes(target: bytes) -> None:
    assert normalize_target(target) == paths._normalize_any_target(target)


_PIECES = st.sampled_from(
    [b"/", b"//", b".", b"..", b"/.", b"/..", b"%2e", b"%2f", b"%5c", b"%00", b"%", b"%4", b"%zz", b"\\", b"a", b"admin",
     b"%61", b"~", b"-", b";", b"#", b"?", b"=", b"@", b":", b"!", b"\"", b"<", b" ", b"\x00", b"\x7f", b"\xc3"]
)  # fmt: skip


@given(st.lists(_PIECES, max_size=10), st.sampled_from([b"", b"/"]))
def test_random_targets_are_judged_alike_by_both_routes(pieces: list[bytes], start: bytes) -> None:
    target = start + b"".join(pieces)
    assert normalize_target(target) == paths._normalize_any_target(target)
