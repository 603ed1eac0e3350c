"""Review app accounts: users, passwords and the breached-password check."""
