"""The control plane: the one place that knows the mesh's desired state.

    __main__.py  `python -m meshkit.control --home DIR [--port P]`
    server.py    loopback socket, uvicorn, control.json, signals
    api.py       the HTTP API (route table and handlers)
    asgi.py      requests in, JSON responses out
    routing.py   (method, path pattern) -> handler
    store.py     versioned state: pure operations + the store.json file
    registry.py  instance records: checks and the registry view
    resources.py check_resource: the gate every config resource passes
    snapshot.py  build_snapshot(state, node): what a sidecar receives
    push.py      long-poll wake-ups with bursts coalesced
    acks.py      per-node ACK/NACK status and push timing history
    names.py     name rules shared by records and resources
    files.py     atomic writes, the persistent admin token
    client.py    ControlClient, the admin client for the Lab and CLI
"""
