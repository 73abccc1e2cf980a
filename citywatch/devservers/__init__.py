"""Local stand-ins for external services in the demo and tests.

A real SMTP server (aiosmtpd) and an HTTP endpoint speaking Twilio's Messages API.
"""
