"""Detectors: the backend-neutral detector interface, model backends and the Detection event.

A city can swap in a model under another license by adding a backend that implements
`detectors.base.Detector`; nothing outside this package knows which backend runs.
"""
