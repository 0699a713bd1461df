"""Notebook 07 (circuit breaking and outlier detection) in a real browser: JupyterLab, Chromium, Playwright.

Opens the notebook at a laptop's 1366x768 with the file browser open, runs
every cell from the Run menu and checks that every cell ran without an error
and the notebook's own checks passed; that both benches are live (the
BreakerWidget's checkboxes and fields, the load generator's Start load
button: widgets, not the text a headless run shows) and that their charts
drew what the notebook's runs sent (200s and 503 UO for slow; 200s, 5xx from
v2 and v2 ejected for pick); that the widgets show the lab as the notebook
left it (slow's breaker taken off again for the live task, pick's outlier
detection on); and that every chart and widget fits (tests/browser/layout.py).

Then it does what the notebook's "Your turn" asks, through the widgets:

1. slow's widget: tick the circuit breaker, maxConnections 4, pending 1,
   Apply, Start load at 20/s for 3 s: most requests are served, more than one
   connection could ever carry;
2. maxConnections back to 1, Apply, 40/s for 3 s: the 200s drop to what one
   connection carries (about five a second) and the rest turn into 503 UO,
   answered in milliseconds; the orange share grows well past step 1's;
3. pick's widget: untick outlier detection, Apply, Start load: v2 is back in
   rotation, in the caller's sidecar's list and in what the client got (half
   of the requests fail again); and the endpoints chart read curl's sidecar
   once after the run, as the notebook says.

Each step reads the charts' plotly divs: the points drawn since the step
started (a dot per request, a bar per second) are the step's run. Last, it
checks that the learner can read the time charts as drawn: a date axis with
clock-time ticks, bars wider than a pixel, markers inside the plot area, and
each chart drawn at its element's width. Screenshots go to
test-artifacts/browser/nb07-*.png.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import BrowserContext, Locator, Page

from tests.browser import notebook_page as nb
from tests.browser.conftest import ARTIFACTS
from tests.browser.jupyter import Server
from tests.browser.layout import assert_fits

NOTEBOOK = "07-circuit-breaking-and-outlier-detection.ipynb"
SLOW_CELL = "slow_bench = Bench("
PICK_CELL = "pick_bench = Bench("
HEADLESS_TEXT = "control BreakerWidget, load on"   # what Bench.show prints when no frontend renders widgets

OUTCOMES = "Requests per second by outcome"
LATENCY = "Latency of each request"
ENDPOINTS = "Endpoints as the caller's sidecar sees them"
OK, OVERFLOW, APP_ERROR = "200 OK", "503 UO: circuit breaker", "5xx from the app"
IN_ROTATION, EJECTED = "in rotation", "ejected by outlier detection"

RUN_ALL_TIMEOUT_S = 240
RUN_TIMEOUT_S = 60          # a few seconds of load, on a busy machine
SETTLE_TIMEOUT_S = 30

SERVICE_MS = 200            # slow's fastest answer: one connection serves at most 1000/200 = 5 requests a second
ONE_CONNECTION_MAX = 20     # 200s one connection can give in a 3 s run: 3 s / 200 ms + the queued one + margin

SCREENSHOTS = ("nb07-laptop.png", "nb07-slow-bench-after-run-all.png", "nb07-slow-bench-after-your-turn.png",
               "nb07-pick-bench-after-run-all.png", "nb07-pick-bench-after-your-turn.png")


def within_binomial(hits: int, n: int, p: float, z: float = 3.29) -> bool:
    """`hits` of `n` is a plausible draw at probability `p` (99.9% two-sided, +1 for rounding)."""
    return abs(hits - n * p) <= z * math.sqrt(n * p * (1 - p)) + 1


@pytest.mark.timeout(480)
def test_breaker_and_outlier_widgets_drive_the_charts_in_a_real_browser(server: Server, browser: BrowserContext) -> None:
    for stale in ("nb07-failure.png", "nb07-failure-outputs.txt", "nb07-timings.txt", *SCREENSHOTS):
        (ARTIFACTS / stale).unlink(missing_ok=True)
    page = browser.pages[0] if browser.pages else browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        check_notebook_07(page, server)
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "nb07-failure.png"))
        (ARTIFACTS / "nb07-failure-outputs.txt").write_text(
            nb.output_text(page) + "\n\npage errors:\n" + "\n".join(errors))
        raise


def check_notebook_07(page: Page, server: Server) -> None:
    started = time.monotonic()
    nb.run_notebook_as_a_learner(page, server.page_url(NOTEBOOK), RUN_ALL_TIMEOUT_S)
    ran_s = time.monotonic() - started

    slow = nb.cell_with(page, SLOW_CELL).locator(".jp-OutputArea")
    pick = nb.cell_with(page, PICK_CELL).locator(".jp-OutputArea")
    for name, bench in (("slow", slow), ("pick", pick)):
        assert HEADLESS_TEXT not in bench.inner_text(), f"the {name} bench shows the headless text, not widgets"
        assert nb.checkbox(bench, "circuit breaker (connectionPool)").count() == 1, (
            f"the {name} bench has no live BreakerWidget:\n{bench.inner_text()[:2000]}")
        assert bench.get_by_role("button", name="Start load").count() == 1, f"the {name} bench has no load generator"
        assert bench.get_by_role("button", name="Apply", exact=True).count() == 1
    titles = nb.rendered_chart_titles(slow, (OUTCOMES, LATENCY), timeout_s=60)
    assert any(t.startswith(OUTCOMES) for t in titles) and any(t.startswith(LATENCY) for t in titles), titles
    titles = nb.rendered_chart_titles(pick, (OUTCOMES, ENDPOINTS), timeout_s=60)
    assert any(t.startswith(OUTCOMES) for t in titles) and any(t.startswith(ENDPOINTS) for t in titles), titles

    # The widgets show what the notebook's cells did: its last cells took section 1's breaker off slow
    # (the live task asks the learner to put one on), and left pick's outlier detection at 3 consecutive 5xx.
    assert not nb.checkbox(slow, "circuit breaker (connectionPool)").is_checked(), "slow's breaker was taken off"
    assert nb.checkbox(pick, "outlier detection").is_checked()
    assert nb.field(pick, "consecutive5xxErrors").input_value() == "3"

    # The charts drew the notebook's runs: 200s, and the breaker's fast 503 UO; v2's 5xx and its ejection.
    latency = nb.plot(slow, LATENCY)
    assert latency.trace(OK)["y"] and latency.trace(OVERFLOW)["y"], f"slow's latency chart: {names(latency)}"
    assert statistics.median(latency.trace(OVERFLOW)["y"]) < 100, "the breaker's 503 UO come in milliseconds"
    outcomes = nb.plot(slow, OUTCOMES)
    assert sum(outcomes.trace(OK)["y"]) > 0 and sum(outcomes.trace(OVERFLOW)["y"]) > 0, names(outcomes)
    pick_outcomes = nb.plot(pick, OUTCOMES)
    assert sum(pick_outcomes.trace(OK)["y"]) > 0 and sum(pick_outcomes.trace(APP_ERROR)["y"]) > 0, names(pick_outcomes)
    assert latest_state(nb.plot(pick, ENDPOINTS), "v2") == EJECTED, "after the notebook's run, curl's sidecar ejected v2"
    assert latest_state(nb.plot(pick, ENDPOINTS), "v1") == IN_ROTATION
    # What the learner sees of them is checked at the end (display_problems), after the steps below ran.
    display_problems = drawn_problems(slow, pick, "after Run All")

    # At a laptop's width with the file browser open, every chart and widget fits its output.
    try:
        assert_fits(page)
    finally:  # what the learner sees, whether it fits or not
        slow.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / SCREENSHOTS[0]))
    nb.screenshot_whole(page, slow, str(ARTIFACTS / SCREENSHOTS[1]))
    nb.screenshot_whole(page, pick, str(ARTIFACTS / SCREENSHOTS[3]))

    # 1. The learner ticks the breaker with room for four connections. At 20/s about 4.5 requests are in
    # flight: most get through.
    nb.checkbox(slow, "circuit breaker (connectionPool)").check()
    apply_breaker(slow, "slow", {"maxConnections": "4", "http1MaxPendingRequests": "1"})
    assert nb.checkbox(slow, "circuit breaker (connectionPool)").is_checked(), "the widget reads the breaker back"
    loose = run_and_read(slow, "slow", rate=20, seconds=3)
    served, overflow = len(loose[OK]), len(loose[OVERFLOW])
    assert served + overflow == 60, f"every request is a 200 or a 503 UO: {counts(loose)}"
    assert served > ONE_CONNECTION_MAX, (
        f"with maxConnections 4, more requests are served than one connection could carry: {counts(loose)}")
    assert overflow < 30, f"with maxConnections 4 at 20/s, most requests get through: {counts(loose)}"

    # 2. A tighter one again: one connection, and twice the rate. The 200s stay at what one connection
    # carries, everything above turns into fast 503 UO.
    apply_breaker(slow, "slow", {"maxConnections": "1"})
    assert nb.field(slow, "maxConnections").input_value() == "1"
    before = nb.plot(slow, OUTCOMES)
    tight = run_and_read(slow, "slow", rate=40, seconds=3)
    served, overflow = len(tight[OK]), len(tight[OVERFLOW])
    assert served + overflow == 120, f"every request is a 200 or a 503 UO: {counts(tight)}"
    assert 1 <= served <= ONE_CONNECTION_MAX, f"one connection to a 200 ms service serves about 15 in 3 s: {counts(tight)}"
    assert overflow / 120 > len(loose[OVERFLOW]) / 60 + 0.3, (
        f"the 503 UO share grows behind the tighter breaker: {counts(loose)} then {counts(tight)}")
    assert statistics.median(y for _, y in tight[OVERFLOW]) < 100, "the breaker's 503 UO come in milliseconds"
    bars = nb.new_points(before, settled(slow, OUTCOMES, before, 120))
    assert sum(y for _, y in bars.get(OVERFLOW, [])) == overflow, (
        f"the bars count the same 503 UO as the dots: {bars.get(OVERFLOW)} vs {overflow}")
    assert bars.get(OK) and max(y for _, y in bars[OK]) <= 1000 / SERVICE_MS + 2, (
        f"about five 200s a second through one connection: {bars.get(OK)}")
    assert_fits(page)
    nb.screenshot_whole(page, slow, str(ARTIFACTS / SCREENSHOTS[2]))

    # 3. pick: untick outlier detection. v2 is back in rotation and round robin sends it every second request.
    assert latest_state(nb.plot(pick, ENDPOINTS), "v2") == EJECTED
    nb.checkbox(pick, "outlier detection").uncheck()
    apply_breaker(pick, "pick", {})
    assert not nb.checkbox(pick, "outlier detection").is_checked(), "the widget reads back no outlier detection"
    before = nb.plot(pick, OUTCOMES)
    pressed = start_load(pick, "pick", rate=40, seconds=4)
    after = settled(pick, OUTCOMES, before, 160)
    bars = nb.new_points(before, after)
    ok, failed = (int(sum(y for _, y in bars.get(name, []))) for name in (OK, APP_ERROR))
    assert ok + failed == 160, f"every request to pick is a 200 or v2's 5xx: {bars}"
    assert within_binomial(failed, 160, 0.5), f"without outlier detection, about half fail again: {failed} of 160"
    endpoints = settled_endpoints(pick)
    assert latest_state(endpoints, "v2") == IN_ROTATION, f"curl's sidecar lists v2 in rotation again: {names(endpoints)}"
    assert latest_state(endpoints, "v1") == IN_ROTATION
    # "once after each run": the newest reading comes after the run's last request, which was sent
    # 4 s - 1/40 s after the run started (after the click).
    run_end = pd.Timestamp(pressed + timedelta(seconds=4 - 1 / 40))
    newest = newest_reading(endpoints)
    late = [] if newest >= run_end else [
        f"the endpoints chart's newest reading of curl's sidecar is at {newest:%H:%M:%S.%f}, before the run's last "
        f"request (not before {run_end:%H:%M:%S.%f}): it was not read once after the run, as the notebook says "
        "(Bench._tick reads a chart's source on every SLOW_SOURCE_EVERY-th tick only, the last tick after a run too)"]
    assert_fits(page)
    nb.screenshot_whole(page, pick, str(ARTIFACTS / SCREENSHOTS[4]))
    display_problems += drawn_problems(slow, pick, "after the learner's steps")
    (ARTIFACTS / "nb07-timings.txt").write_text(
        f"run all cells: {ran_s:.1f} s\nwhole test in the browser: {time.monotonic() - started:.1f} s\n"
        f"maxConnections 4 at 20/s: {counts(loose)}\nmaxConnections 1 at 40/s: {counts(tight)}\n"
        f"pick without outlier detection: {ok} 200, {failed} 5xx\n"
        f"widget labels drawn cut off: {nb.cut_labels(slow)}\n")
    assert not display_problems, (
        "the charts hold the right data, but the learner does not see it as a time chart "
        "(see nb07-*.png):\n" + "\n".join(display_problems))
    assert not late, "\n".join(late)


# -- steps --------------------------------------------------------------------------------------


def apply_breaker(bench: Locator, service: str, fields: dict[str, str]) -> int:
    """Type each field's value, press the widget's Apply, and wait for the new config version it reports."""
    pattern = re.compile(rf"applied DestinationRule \S+/{service} as config version (\d+)")
    old = [int(m) for m in pattern.findall(bench.inner_text())]
    for label, value in fields.items():
        nb.set_field(bench, label, value)
    bench.get_by_role("button", name="Apply", exact=True).click()
    match = nb.wait_for_text(bench, pattern, 20, accept=lambda m: int(m.group(1)) > max(old, default=0))
    for label, value in fields.items():
        assert nb.field(bench, label).input_value() == value, f"after Apply the widget shows {label} {value}"
    return int(match.group(1))


def start_load(bench: Locator, service: str, rate: int, seconds: int) -> datetime:
    """Fill the load generator's rate and duration, press Start load, and wait for the run to end; returns
    when Start load was pressed (this machine's wall clock, which the charts' time axes show)."""
    nb.set_field(bench, "rate /s", str(rate))
    nb.set_field(bench, "duration s", str(seconds))
    label = re.compile(rf"#(\d+) {service} {rate}/s, {rate * seconds} requests(: (\w+).*)?")
    runs = [int(m.group(1)) for m in label.finditer(bench.inner_text())]
    pressed = datetime.now()
    bench.get_by_role("button", name="Start load").click()
    ended = nb.wait_for_text(bench, label, RUN_TIMEOUT_S,
                             accept=lambda m: int(m.group(1)) > max(runs, default=0) and m.group(3) is not None)
    assert ended.group(3) == "done", f"the load run did not finish: {ended.group(0)}"
    return pressed


def run_and_read(bench: Locator, service: str, rate: int, seconds: int) -> dict[str, list[tuple[Any, Any]]]:
    """Start load and return the latency chart's new dots per outcome, once every request of the run is drawn."""
    before = nb.plot(bench, LATENCY)
    start_load(bench, service, rate, seconds)
    return nb.new_points(before, settled(bench, LATENCY, before, rate * seconds))


def settled(bench: Locator, title: str, before: nb.Plot, total: int) -> nb.Plot:
    """The chart once its points drawn since `before` add up to `total` (dots, or bar heights) and stop changing."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    last: dict[str, list[tuple[Any, Any]]] | None = None
    while True:
        plot = nb.plot(bench, title)
        fresh = nb.new_points(before, plot)
        drawn = sum(y for points in fresh.values() for _, y in points) if title == OUTCOMES \
            else sum(len(points) for points in fresh.values())
        if drawn == total and fresh == last:
            return plot
        if time.monotonic() > deadline:
            raise TimeoutError(f"chart {title!r} shows {drawn} of the run's {total} requests: {counts(fresh)}")
        last = fresh
        time.sleep(1.0)


def settled_endpoints(bench: Locator) -> nb.Plot:
    """The endpoints chart once two reads a second apart agree (it is read once more after each run)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    last = None
    while True:
        plot = nb.plot(bench, ENDPOINTS)
        if plot == last or time.monotonic() > deadline:
            return plot
        last = plot
        time.sleep(1.0)


# -- reading the charts ---------------------------------------------------------------------------


def drawn_problems(slow: Locator, pick: Locator, when: str) -> list[str]:
    """What would keep a learner from reading the benches' time charts (see nb.time_axis_problems)."""
    problems = [f"slow's {p}" for p in nb.time_axis_problems(slow, OUTCOMES, bars=True)
                + nb.time_axis_problems(slow, LATENCY, markers=True)]
    problems += [f"pick's {p}" for p in nb.time_axis_problems(pick, OUTCOMES, bars=True)
                 + nb.time_axis_problems(pick, ENDPOINTS, markers=True)]
    problems += [f"chart {p}" for p in nb.narrow_charts(slow) + nb.narrow_charts(pick)]
    return [f"{when}: {p}" for p in problems]


def names(plot: nb.Plot) -> list[str]:
    return [t["name"] for t in plot.traces]


def counts(points: dict[str, list[tuple[Any, Any]]]) -> dict[str, int]:
    return {name: len(p) for name, p in points.items() if p}


def newest_reading(endpoints: nb.Plot) -> pd.Timestamp:
    """When the sidecar was last read: the newest marker of the endpoints chart (see latest_state)."""
    times = [pd.Timestamp(x) for t in endpoints.traces if t["name"] in (IN_ROTATION, EJECTED)
             and not any(x is None for x in t["x"]) for x in t["x"]]
    assert times, f"no reading in the endpoints chart: {endpoints.traces}"
    return max(times)


def latest_state(endpoints: nb.Plot, version: str) -> str:
    """The state of `version`'s endpoint at the sidecar's newest reading: IN_ROTATION or EJECTED.

    The chart draws each state twice under one name: bars joining readings
    (their x broken by nulls) and a marker per reading (no nulls); the markers
    are read.
    """
    newest: tuple[pd.Timestamp, str] | None = None
    for trace in endpoints.traces:
        if trace["name"] not in (IN_ROTATION, EJECTED) or any(x is None for x in trace["x"]):
            continue
        for x, y in zip(trace["x"], trace["y"], strict=True):
            if str(y).startswith(f"{version} ") and (newest is None or pd.Timestamp(x) > newest[0]):
                newest = (pd.Timestamp(x), trace["name"])
    assert newest is not None, f"no reading of {version} in the endpoints chart: {endpoints.traces}"
    return newest[1]
