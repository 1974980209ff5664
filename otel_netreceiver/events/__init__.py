"""Event records (issue 4, "Events"): kernel events as OTLP log records and on the terminal."""
