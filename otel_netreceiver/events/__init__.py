"""Event records: kernel events as OTLP log records and on the terminal."""
