"""Who may see and change what: actors and the visibility rule (``access``), password hashes
(``passwords``) and per-run and per-user limits (``quota``)."""
