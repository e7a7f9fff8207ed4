"""Herald's benchmark: ``python -m bench`` (docs/performance.md).

Herald against bare Celery tasks on the same broker, pool and concurrency, in one run:

- :mod:`bench.provider`: the local provider (its own process, an asyncio timer);
- :mod:`bench.baseline`: the bare Celery app (a no-op task and an HTTP task);
- :mod:`bench.scenarios`: what is measured and the targets;
- :mod:`bench.run`: a Redis per case, pre-queued jobs, workers, their cost;
- :mod:`bench.processes`: child processes, their CPU and memory, killed on exit;
- :mod:`bench.report`: summaries, targets, the table and the JSON;
- :mod:`bench.cli`: the command line.
"""
