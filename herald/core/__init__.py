"""The send core: one job from payload to outcome, knowing nothing of Celery.

The pipeline (:mod:`~herald.core.pipeline`) parses, claims, routes
(:mod:`~herald.core.routing`), checks the messaging window (:mod:`~herald.core.windows`),
renders (:mod:`~herald.core.render`), delivers the parts (:mod:`~herald.core.delivery`)
under the one retry policy (:mod:`~herald.core.retry`) and records the outcome
(:mod:`~herald.core.outcomes`).
"""
