"""Ingest: source adapters (cameras, air-quality replays) and the events they produce.

Everything here is plain Python: no Kafka, no Faust. The composition root
(`citywatch`) publishes what these adapters yield.
"""
