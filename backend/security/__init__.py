"""Passwords, field encryption and tokens."""
