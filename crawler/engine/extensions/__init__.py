"""Scrapy extensions: one component per module."""
