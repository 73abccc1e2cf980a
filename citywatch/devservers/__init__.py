"""Local stand-ins for external services used by the demo and tests: an SMTP server and a Twilio-compatible HTTP endpoint."""
