"""The worker's Faust agents, one module each, all thin and all under one failure policy.

An agent decodes its own input, hands it to a domain (detectors, rules, notifier, storage)
and publishes what comes back. What goes wrong is judged by `policy`: a transient failure is
waited out (the agent stops consuming meanwhile), a permanent one dead-letters exactly the
message that caused it (`context.AgentContext.dead_letter`) and the agent carries on.
"""
