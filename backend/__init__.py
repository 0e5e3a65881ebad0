"""Fidus: the backend of a fund manager's investment-management platform."""
