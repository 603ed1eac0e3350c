"""Exports, reports (text and HTML), transparency figures and hash list export."""
