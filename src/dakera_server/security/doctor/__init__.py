"""``doctor``: the production checklist of the security document, judged on a configuration and
a running server (``checks``), from facts gathered about the host and the key store
(``facts``), rendered as a table or JSON (``report``)."""
