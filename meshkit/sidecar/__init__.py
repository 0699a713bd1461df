"""meshkit.sidecar: the proxy's asyncio shell. Decisions are meshkit.core's; this moves bytes and calls them.

A request reads top to bottom; each module imports only those below it
(tests/unit/test_import_cycles.py keeps it so), and a lower layer calls
back up only through a small typing.Protocol it defines:

    downstream      listeners (one constructor per direction) and the client connection: HTTP/1.1 in
    exchange        one request and its response: its phases, its attempts, the relay both ways
    handling        what a handler sees of a request (Protocols), the direction enum
    outbound        the outbound handler: route, pick a destination, hand the rule to the exchange
    inbound         the inbound handler: label the caller, admit, rate-limit, forward to the app
    admission       per inbound request: mTLS mode, path normalisation, authorization
    admin           the admin listener's pages (/ready, /config_dump, /stats/prometheus, ...)
    admin_certs     the /certs page
    mirror          mirrored copies of requests, answers ignored
    cluster         outbound clusters: endpoints, balancer, breaker counts, outlier state
    upstream        connections to endpoints, pooled, with the cluster's connection limits
    flow            back-pressure between the two sockets of a request (ReadGate)

Config and identity, beside the request path:
    state           the current snapshot and how a new one replaces it (ACK/NACK)
    routing_table   everything routing needs from one snapshot, compiled once
    inbound_policy  the inbound side's mTLS mode and AuthorizationPolicies from a snapshot
    outbound_tls    per endpoint: dial mTLS or plaintext, and the identity to expect
    sniffing        the inbound socket: plaintext and mTLS on one port, by the first byte
    peer_check      who called over mTLS, read once after the handshake (and XFCC)
    identity        the workload certificate: held, renewed, and the TLS contexts built from it
    control_client  the long poll for snapshots and the ACKs
    control_call    one HTTP call to the control plane
    bootstrap       the bootstrap file, checked

The process:
    runtime         a running sidecar: listeners, config source, shutdown
    __main__        `python -m meshkit.sidecar --bootstrap FILE`
    clock           the coarse clock that sweeps timeouts
    telemetry       counters, histograms and the ring of recent requests
    accesslog       the access log lines
    telemetry_push  the exporter: logs and pushes finished requests off the hot path
"""
