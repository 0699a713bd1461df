"""Demo applications: one small configurable HTTP service and the apps built from it.

`apps` defines what a lab deploys (Bookinfo, the shop); `python -m meshkit.demo
--spec FILE` runs one process of one workload. Nothing heavy is imported here,
because the lab starts many of these processes at once.
"""
