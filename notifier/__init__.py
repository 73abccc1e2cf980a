"""Notifier: deliver alerts to people by SMS and email, exactly once per recipient and channel."""
