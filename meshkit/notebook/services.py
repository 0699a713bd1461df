"""Where the lab's services are: their URLs as links a learner clicks.

    from meshkit.notebook import service_links
    service_links(lab)          # a table of links; plain text when headless

The addresses come from `lab.services()` (columns `address` and `url`): on
the local backend each service's loopback endpoint, which a browser on the
same machine opens. A browser is a client outside the mesh, so it reaches
one instance in plaintext; `lab.call` sends from inside the mesh.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import pandas as pd
from IPython.display import Pretty

from meshkit.lab import Lab
from meshkit.notebook import frontend
from meshkit.tables import to_text

COLUMNS = ["service", "namespace", "versions", "url"]


def links_html(services: pd.DataFrame) -> str:
    """An HTML table of `lab.services()`: one row per service, its URL a link
    that opens in a new tab (the notebook stays where it is)."""
    head = "".join(f"<th>{html.escape(name)}</th>" for name in COLUMNS)
    rows = []
    for row in services.itertuples(index=False):
        url = row.url if isinstance(row.url, str) else ""
        link = f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener">{html.escape(url)}</a>' if url else "-"
        cells = [html.escape(str(row.service)), html.escape(str(row.namespace)), html.escape(str(row.versions)), link]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    body = "".join(rows) or f'<tr><td colspan="{len(COLUMNS)}">(no services: deploy an app first)</td></tr>'
    return f'<table class="meshkit-services"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def links_text(services: pd.DataFrame) -> str:
    """The same table as plain text, for headless runs and terminals."""
    return to_text(services[COLUMNS], empty="(no services: deploy an app first)")


def service_links(lab: Lab, live: bool | None = None) -> widgets.HTML | Pretty:
    """Every service of the lab with the URL to open it from this machine.

    Live (JupyterLab, VS Code) an HTML widget of links; headless
    (meshkit.notebook.frontend) plain text, so an executed notebook keeps
    the addresses readable. `live` overrides the detection."""
    services = lab.services()
    if frontend.is_live() if live is None else live:
        return widgets.HTML(links_html(services))
    return Pretty(links_text(services))
