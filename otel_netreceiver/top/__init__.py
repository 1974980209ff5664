"""``otel-netreceiver top``: the node's pods ranked by what they are doing right now.

The agent computes rates between its last two store snapshots (rows.py, a pure function
over the column table in columns.py) and serves them on the node API's ``/v1/top``; the
command reads that over the Unix socket (client.py) and draws it with rich (view.py,
app.py), so watching a node costs it nothing beyond one small JSON answer per refresh.
"""
