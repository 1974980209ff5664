"""DNS on the wire: the pure parser the DNS probe's records go through (RFC 1035)."""
