"""Rules: the YAML alert language, its validating loader and the streaming evaluator."""
