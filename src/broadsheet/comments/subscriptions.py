"""Subscriptions (being written)."""
