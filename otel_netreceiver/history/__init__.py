"""Recent history of the counters the correlation API and the diagnosis rules read."""
