"""The public contract: what producers send and consumers read.

The send job and the interaction (:mod:`~herald.contract.job`), the outcome event
(:mod:`~herald.contract.events`), the error tree with the outcome codes
(:mod:`~herald.contract.errors`), and the names of tasks, queues and streams
(:mod:`~herald.contract.names`). Pure models: no IO. docs/contract.md describes it.
"""
