"""The job queue: ``JobStore`` keeps jobs and API keys in SQL, ``LocalExecutor`` runs them on
worker threads in the server process. Nothing here imports torch; the engine is imported by the
executor's workers when the first job runs."""

from openreel.jobs.store import JobRecord, JobStore

__all__ = ["JobRecord", "JobStore"]
