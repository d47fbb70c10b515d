"""Who gets which email (being written)."""
