"""Documents rendered for people: client statements (JSON, CSV, PDF)."""
