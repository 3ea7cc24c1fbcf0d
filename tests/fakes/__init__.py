"""Test doubles that stand at the network edge only: the platforms' APIs (platform_servers) and
rows that later pipeline stages would have written (rows)."""
