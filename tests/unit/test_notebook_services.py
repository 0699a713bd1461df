"""Service links: an HTML table of links live, plain text headless."""

from __future__ import annotations

import pandas as pd

from meshkit.notebook.services import links_html, links_text

SERVICES = pd.DataFrame(
    {
        "namespace": ["default", "default"],
        "service": ["productpage", "reviews"],
        "host": ["productpage.default.svc.cluster.local", "reviews.default.svc.cluster.local"],
        "endpoints": [1, 3],
        "versions": ["v1", "v1, v2, v3"],
        "address": ["127.0.0.1:40001", None],
        "url": ["http://127.0.0.1:40001/productpage", None],
    }
)


def test_each_url_is_a_link_that_opens_in_a_new_tab() -> None:
    page = links_html(SERVICES)
    assert '<a href="http://127.0.0.1:40001/productpage" target="_blank" rel="noopener">' in page
    assert page.count("<tr>") == 3 and "<td>v1, v2, v3</td><td>-</td>" in page


def test_names_are_escaped() -> None:
    odd = SERVICES.assign(versions=["<b>v1</b>", "v2"])
    assert "&lt;b&gt;v1&lt;/b&gt;" in links_html(odd) and "<b>v1</b>" not in links_html(odd)


def test_headless_text_lists_service_versions_and_url() -> None:
    text = links_text(SERVICES)
    assert text.splitlines()[0].split() == ["service", "namespace", "versions", "url"]
    assert "http://127.0.0.1:40001/productpage" in text and "reviews" in text


def test_no_services_say_what_to_do() -> None:
    assert "deploy" in links_text(SERVICES.iloc[0:0]) and "deploy" in links_html(SERVICES.iloc[0:0])
