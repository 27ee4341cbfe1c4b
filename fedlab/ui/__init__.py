"""fedlab's live panels."""
