"""WorkSpaces enroll themselves: an endpoint that proves who asks and answers with an activation.

``protocol`` (what is sent and answered), ``addresses`` (who is asking), ``admission`` (how often),
``directory`` (the in-scope WorkSpaces by address), ``issuer`` (the per-WorkSpace activations and
where their codes live), ``service`` (the decision, logged and counted) and ``server`` (the
listener). The Enrollment kind (``controller/kinds/enrollment.py``) deletes used and expired
activations and reports impostors; it asks ``identity`` the same question the endpoint asks.
"""
