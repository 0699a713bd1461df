"""Where services are and what the lab costs, as pure functions: roles, paths, percentages, the table."""

from __future__ import annotations

from meshkit.backends.base import APP, CONTROL_PLANE, SIDECAR, ProcessUsage
from meshkit.backends.local import lab_processes, spec_to_dict
from meshkit.backends.processes import cpu_percent
from meshkit.demo.apps import get_app
from meshkit.lab import RESOURCE_COLUMNS, browse_path, resources_frame


def proc(pid: int) -> dict:
    return {"pid": pid, "create_time": 1.0, "log": f"/logs/{pid}.log"}


def test_every_recorded_process_gets_its_role_control_plane_first() -> None:
    reviews = next(s for s in get_app("bookinfo") if s.name == "reviews-v2")
    ratings = next(s for s in get_app("bookinfo") if s.name == "ratings-v1")
    state = {
        "control": {"proc": proc(10)},
        "instances": {
            "default/reviews-v2-0": {"namespace": "default", "instance": "reviews-v2-0", "spec": spec_to_dict(reviews),
                                     "app_proc": proc(21), "sidecar_proc": proc(22), "sidecar": True},
            "default/ratings-v1-0": {"namespace": "default", "instance": "ratings-v1-0", "spec": spec_to_dict(ratings),
                                     "app_proc": proc(31), "sidecar": False},
        },
    }
    found = [(labels, record.pid) for labels, record in lab_processes(state)]
    assert found == [
        (("", "control-plane", "control-plane", CONTROL_PLANE), 10),
        (("default", "ratings-v1", "ratings-v1-0", APP), 31),
        (("default", "reviews-v2", "reviews-v2-0", APP), 21),
        (("default", "reviews-v2", "reviews-v2-0", SIDECAR), 22),
    ]
    assert lab_processes({"control": None, "instances": {}}) == []


def test_cpu_percent_is_a_share_of_one_core_over_the_window() -> None:
    assert cpu_percent(1.0, 1.25, 0.5) == 50.0
    assert cpu_percent(1.0, 3.0, 1.0) == 200.0  # two cores busy
    assert cpu_percent(1.0, 1.0, 0.0) == 0.0
    assert cpu_percent(2.0, 1.0, 1.0) == 0.0  # never negative


def test_a_service_link_opens_the_first_path_it_serves_with_product_0() -> None:
    assert browse_path(("/productpage", "/")) == "/productpage"
    assert browse_path(("/reviews/{id}",)) == "/reviews/0"
    assert browse_path(()) == "/"


def test_the_resources_table_has_memory_in_mib_and_keeps_its_sample_window() -> None:
    usages = [ProcessUsage("", "control-plane", "control-plane", CONTROL_PLANE, 10, 1.5, 2.0, 60 * 1024 * 1024),
              ProcessUsage("default", "reviews-v2", "reviews-v2-0", SIDECAR, 22, 0.0, 0.5, 40 * 1024 * 1024)]
    frame = resources_frame(usages, 0.5)
    assert list(frame.columns) == RESOURCE_COLUMNS
    assert frame["memory_mb"].tolist() == [60.0, 40.0]
    assert frame["pid"].dtype.kind == "i" and frame["cpu_percent"].dtype.kind == "f"
    assert frame.attrs["sample_s"] == 0.5
    assert list(resources_frame([], 1.0).columns) == RESOURCE_COLUMNS
