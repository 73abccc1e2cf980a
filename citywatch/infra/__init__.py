"""Local infrastructure for the laptop/CI default: a Tansu broker and a TimescaleDB server.

Production points the settings at real servers instead; nothing here runs there.
"""
