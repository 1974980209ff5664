"""TCP socket state through sock_diag netlink (per network namespace)."""
