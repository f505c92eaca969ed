"""Delivery: the forwarder, its send-time consent re-check, retries and dead
letters, and the destination types in ``destinations/``."""
