"""The operator web console (FastAPI): live alert feed; issue 7/7 adds ack, rule editor, history."""
