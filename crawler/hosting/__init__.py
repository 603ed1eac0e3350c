"""Who hosts this and whom to tell: attribution and abuse addresses."""
