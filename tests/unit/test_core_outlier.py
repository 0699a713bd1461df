"""Outlier detection: ejection, its limits, readmission (meshkit.core.outlier)."""

from __future__ import annotations

from meshkit.core.outlier import MAX_EJECTION_TIME_S, OutlierDetector
from meshkit.core.rules import OutlierSpec


def spec(five: int = 3, gateway: int = 0, base: float = 10.0, percent: int = 100) -> OutlierSpec:
    return OutlierSpec(five, gateway, 1.0, base, percent)


def test_consecutive_5xx_eject_at_once_and_a_success_resets_the_count() -> None:
    d = OutlierDetector(spec(five=3), ["a", "b"])
    assert not d.report("a", 500, 0.0) and not d.report("a", 503, 0.0)
    assert not d.report("a", 200, 0.0)
    assert not d.report("a", 500, 0.0) and not d.report("a", 500, 0.0)
    assert d.report("a", 502, 0.0)
    assert d.is_ejected("a") and not d.is_ejected("b")


def test_gateway_errors_count_only_502_503_504_in_a_row() -> None:
    d = OutlierDetector(spec(five=0, gateway=2), ["a"])
    assert not d.report("a", 503, 0.0) and not d.report("a", 500, 0.0)  # a 500 breaks the run
    assert not d.report("a", 504, 0.0)
    assert d.report("a", 502, 0.0)


def test_zero_turns_a_rule_off() -> None:
    d = OutlierDetector(spec(five=0, gateway=0), ["a"])
    assert not any(d.report("a", 500, 0.0) for _ in range(100))


def test_max_ejection_percent_holds_but_the_first_ejection_is_always_allowed() -> None:
    d = OutlierDetector(spec(five=1, percent=10), ["a", "b", "c"])
    assert d.report("a", 500, 0.0)  # 0 ejected: allowed although 1/3 > 10%
    assert not d.report("b", 500, 0.0)
    assert d.ejected_count == 1
    everyone = OutlierDetector(spec(five=1, percent=100), ["a", "b"])
    assert everyone.report("a", 500, 0.0) and everyone.report("b", 500, 0.0)


def test_readmitted_by_the_sweep_after_base_time_times_ejections() -> None:
    d = OutlierDetector(spec(five=1, base=10.0), ["a", "b"])
    d.report("a", 500, 0.0)
    assert not d.sweep(9.9) and d.is_ejected("a")
    assert d.sweep(10.0) and not d.is_ejected("a")
    d.report("a", 500, 10.0)  # second ejection before the multiplier came down: 20 s
    assert not d.sweep(29.9) and d.sweep(30.0)


def test_the_multiplier_comes_down_while_the_endpoint_stays_healthy() -> None:
    d = OutlierDetector(spec(five=1, base=10.0), ["a"])
    d.report("a", 500, 0.0)
    d.sweep(10.0)
    d.report("a", 500, 10.0)
    d.sweep(30.0)  # readmitted after 20 s
    d.sweep(31.0)
    d.sweep(32.0)  # two healthy sweeps: multiplier 2 -> 0
    d.report("a", 500, 33.0)
    assert d.sweep(43.0)  # base time again


def test_ejection_time_is_capped() -> None:
    d = OutlierDetector(spec(five=1, base=200.0), ["a"])
    health = d.hosts["a"]
    health.multiplier = 5
    assert d.ejection_time(health) == MAX_EJECTION_TIME_S


def test_failures_are_reported_as_their_status_and_an_ejected_endpoint_ignores_reports() -> None:
    d = OutlierDetector(spec(five=2), ["a"])
    d.report("a", 503, 0.0)
    assert d.report("a", 504, 0.0)
    assert not d.report("a", 500, 0.0)
    assert d.hosts["a"].consecutive_5xx == 0


def test_an_update_keeps_the_records_of_endpoints_that_remain() -> None:
    d = OutlierDetector(spec(five=1), ["a", "b"])
    d.report("a", 500, 0.0)
    d.update(spec(five=5), ["a", "c"])
    assert d.is_ejected("a") and set(d.hosts) == {"a", "c"} and d.spec.consecutive_5xx_errors == 5
