"""Real parts for tests, the demo and the scripts: the local provider sandbox
(:mod:`~herald.testing.sandbox`) and restartable processes (:mod:`~herald.testing.processes`).

Nothing in Herald's send path imports this package.
"""
