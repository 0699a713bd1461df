"""Notebook 05's chart: which version each user reached, from hand-made request rows."""

from __future__ import annotations

import pandas as pd

from meshkit.notebook.charts import routing
from meshkit.notebook.figures import version_color
from meshkit.notebook.recorder import COLUMNS, DTYPES


def rows(spec: list[tuple[float, int, str, int, str]]) -> pd.DataFrame:
    """(at, run, version, code, flags) -> recorder rows."""
    data = [(at, 1.0, code, flags, version, "", "reviews", run) for at, run, version, code, flags in spec]
    return pd.DataFrame(data, columns=COLUMNS).astype(DTYPES)


def test_a_run_is_the_user_whose_header_it_sent_whatever_the_case_of_the_name() -> None:
    users = routing.run_users([(1, {"end-user": "jason"}), (2, {"End-User": "kim"}), (3, {}), (4, {"x-other": "a"})])
    assert users == {1: "jason", 2: "kim", 3: routing.NO_HEADER, 4: routing.NO_HEADER}


def test_values_keep_their_case_so_jason_and_Jason_are_two_users() -> None:
    users = routing.run_users([(1, {"end-user": "jason"}), (2, {"end-user": "Jason"})])
    frame = routing.with_users(rows([(0.0, 1, "v2", 200, ""), (0.1, 2, "v1", 200, "")]), users)
    assert list(frame["user"]) == ["jason", "Jason"]


def test_rows_of_an_unknown_run_count_as_no_header() -> None:
    frame = routing.with_users(rows([(0.0, 7, "v1", 200, "")]), {})
    assert list(frame["user"]) == [routing.NO_HEADER]


def test_the_table_gives_each_users_share_per_version_in_the_window() -> None:
    spec = [(float(i) / 10, 1, "v2", 200, "") for i in range(30)]            # jason: v2
    spec += [(float(i) / 10, 2, "v1" if i % 3 else "v3", 200, "") for i in range(30)]  # kim: mixed
    spec += [(0.5, 3, "v1", 200, "")]                                        # anonymous
    frame = routing.with_users(rows(spec), {1: "jason", 2: "kim", 3: routing.NO_HEADER})
    table = routing.user_table(frame, window_s=None)
    assert list(dict.fromkeys(table["user"])) == ["jason", "kim", routing.NO_HEADER]  # order of first appearance
    kim = table[table["user"] == "kim"].set_index("answered_by")
    assert kim["count"].to_dict() == {"v1": 20, "v3": 10}
    assert abs(kim.loc["v1", "percent"] - 200 / 3) < 1e-9
    assert table["count"].dtype == "int64"


def test_the_window_keeps_the_newest_seconds_of_a_long_run_only() -> None:
    spec = [(0.0, 1, "v1", 200, ""), (1.0, 1, "v1", 200, ""), (9.0, 1, "v2", 200, ""), (10.0, 1, "v2", 200, "")]
    frame = routing.with_users(rows(spec), {1: "jason"})
    table = routing.user_table(frame, window_s=5.0)
    assert table[["answered_by", "count"]].values.tolist() == [["v2", 2]]


def test_each_user_counts_its_latest_run_only_never_a_mix_with_the_run_before_a_rule_changed() -> None:
    spec = [(0.0, 1, "v1", 200, ""), (1.0, 1, "v1", 200, ""), (2.0, 2, "v3", 200, ""),   # jason, then kim
            (2.5, 3, "v2", 200, ""), (3.0, 3, "v2", 200, "")]                             # jason again, new rule
    frame = routing.with_users(rows(spec), {1: "jason", 2: "kim", 3: "jason"})
    table = routing.user_table(frame, window_s=5.0).set_index(["user", "answered_by"])["count"]
    assert table.to_dict() == {("jason", "v2"): 2, ("kim", "v3"): 1}


def test_a_request_no_version_answered_is_named_by_its_code_and_flags() -> None:
    frame = routing.with_users(rows([(0.0, 1, "", 404, "NR"), (0.1, 1, "", 0, "")]), {1: "kim"})
    assert set(routing.user_table(frame, None)["answered_by"]) == {"404 NR", "no answer"}


def test_chart_has_one_stacked_bar_part_per_version_in_the_versions_colours() -> None:
    spec = [(0.0, 1, "v2", 200, ""), (0.1, 2, "v1", 200, ""), (0.2, 2, "v3", 200, ""), (0.3, 3, "", 404, "NR")]
    frame = routing.with_users(rows(spec), {1: "jason", 2: "kim", 3: "ann"})
    traces, layout = routing.versions_by_user(frame, window_s=None)
    assert [t.name for t in traces] == ["v1", "v2", "v3", "404 NR"]  # versions first, failures after
    assert layout["barmode"] == "stack"
    v3 = traces[2]
    assert list(v3.x) == ["jason", "kim", "ann"] and list(v3.y) == [0.0, 50.0, 0.0]
    assert list(v3.text) == ["", "1", ""] and list(v3.customdata) == [0, 1, 0]
    assert v3.marker.color == version_color("v3", ["v1", "v2", "v3"])
    assert traces[3].marker.color == routing.FAILED_COLOR


def test_chart_uses_the_shared_layout_with_its_legend_under_it_and_no_width() -> None:
    frame = routing.with_users(rows([(0.0, 1, "v1", 200, "")]), {1: "jason"})
    _, layout = routing.versions_by_user(frame)
    assert "width" not in layout and layout["legend"]["orientation"] == "h" and layout["legend"]["yanchor"] == "bottom"
    assert layout["yaxis"]["range"] == [0, 100] and layout["annotations"][0]["visible"] is False
    assert layout["title"]["text"] == "Which version each user reached (latest run per user, last 5 s)"


def test_chart_of_no_requests_says_how_to_start() -> None:
    traces, layout = routing.versions_by_user(routing.with_users(rows([]), {}))
    assert traces == [] and "start load" in layout["annotations"][0]["text"]
    assert layout["annotations"][0]["visible"] is True


def test_a_version_keeps_its_colour_whichever_versions_the_window_holds() -> None:
    frame = routing.with_users(rows([(0.0, 1, "v3", 200, "")]), {1: "kim"})
    traces, _ = routing.versions_by_user(frame, versions=["v1", "v2", "v3"])
    assert traces[0].marker.color == version_color("v3", ["v1", "v2", "v3"])
    alone, _ = routing.versions_by_user(frame)
    assert alone[0].marker.color != traces[0].marker.color  # without the list, v3 would take v1's colour


def test_the_note_hides_again_when_a_live_figure_gets_requests() -> None:
    from meshkit.notebook.figures import fill
    from meshkit.notebook.live import new_figure

    fig = new_figure(False, {})
    fill(fig, *routing.versions_by_user(routing.with_users(rows([]), {})))
    fill(fig, *routing.versions_by_user(routing.with_users(rows([(0.0, 1, "v1", 200, "")]), {1: "kim"})))
    assert [a.visible for a in fig.layout.annotations] == [False]


def test_the_source_names_each_row_after_the_headers_of_its_run() -> None:
    class Run:
        def __init__(self, run_id: int, headers: dict[str, str]) -> None:
            self.run_id = run_id
            self.spec = type("Spec", (), {"headers": headers})()

    class FakeBench:
        loadgen = type("Loadgen", (), {"runs": [Run(1, {"end-user": "jason"}), Run(2, {})]})()

        def frame(self) -> pd.DataFrame:
            return rows([(0.0, 1, "v2", 200, ""), (0.1, 2, "v1", 200, "")])

    bench = FakeBench()
    frame = routing.users_source(lambda: bench)()  # type: ignore[arg-type,return-value]
    assert list(frame["user"]) == ["jason", routing.NO_HEADER]


def test_user_versions_is_a_table_of_whole_numbers_per_user_and_version() -> None:
    spec = [(0.0, 1, "v2", 200, ""), (0.1, 1, "v2", 200, ""), (0.2, 2, "v1", 200, ""), (0.3, 3, "v3", 200, "")]
    frame = routing.with_users(rows(spec), {1: "jason", 2: "kim", 3: "ann"})
    table = routing.user_versions(frame, runs=[1, 2])
    assert list(table.index) == ["jason", "kim"] and list(table.columns) == ["v1", "v2"]
    assert table.loc["jason"].tolist() == [0, 2] and table.loc["kim"].tolist() == [1, 0]
    assert all(str(t) == "int64" for t in table.dtypes)
    assert routing.user_versions(frame, runs=[9]).empty
