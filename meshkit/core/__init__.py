"""meshkit.core: the mesh's decisions as pure functions, with no I/O (no asyncio, socket or ssl; a test enforces it).

Config in:
    checks          reading plain JSON values with a field path in every complaint
    rules           the traffic resources of a snapshot, typed and checked
    security_rules  the security part of a snapshot, checked before anything enforces it
    snapshot        the snapshot a sidecar receives, checked before anything uses it
    routes          VirtualServices and DestinationRules compiled to a route table per host

A request's way through a sidecar:
    framing         is an HTTP/1.1 head safe to forward, and what does it say
    paths           the request path that authorization judges and the app receives
    services        which service a request's host name means
    edits           header and URI edits a route asks for
    tracing         request ids and W3C trace context, per hop
    peer            who called: the metadata exchange between sidecars
    peer_auth       which connections a workload accepts, and how a client connects to it
    authz           AuthorizationPolicy: may this request reach the workload
    ratelimit       local rate limiting (Envoy's token bucket)
    balancer        choosing an endpoint: Istio's four load balancers
    retry           retry conditions, backoff and Linkerd's retry budget
    attempts        after a failed attempt: retry, or give up with which flags
    limits          circuit breakers (admit or 503 UO) and timeouts (when they run, what firing does)
    outlier         outlier detection: eject endpoints that keep failing, readmit later
    local_reply     responses the mesh writes itself, and their Envoy flags

Around it:
    backoff         how long to wait before reconnecting to the control plane
"""
