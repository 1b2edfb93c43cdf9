"""A local AWS endpoint that behaves like a WorkSpaces fleet managed by SSM.

moto (server mode) provides the wire protocol and the services it already models well (S3, SSM
parameters and documents, DynamoDB, STS). This package adds, as handlers registered on moto's
response classes, what moto lacks: hybrid activations, managed instances, associations and
compliance, WorkSpaces' ComputerName/IpAddress, AWS's page semantics for the tagging API. A fleet
simulator and an admin API under ``/_sandbox/`` drive WorkSpaces and their SSM agents.
"""
