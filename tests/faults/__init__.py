"""The fault-injection harness: the embedded server in a process of its own, paused, killed and
restarted while the API serves concurrent requests."""
