"""Scale-out: everything that imports Redis (shared frontier and scheduler)."""
