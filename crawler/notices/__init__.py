"""Takedown notices: build, mail rendering, archives, routing, disputes, urgency and recheck."""
