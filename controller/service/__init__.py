"""The service behind ``run``: the loop per target, desired-state sources (directory, git), the
webhook, leases between replicas.

The one-shot commands (validate, plan, apply, export) go cli -> engine -> kinds and never need
this package; keeping the long-running parts here lets the two paths read apart.
"""
