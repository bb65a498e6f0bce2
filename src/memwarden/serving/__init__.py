"""What the two HTTP faces (``api/`` and ``web/``) share, below both of them: the app's hold
on its database (``state``), who is calling (``auth``), the one mapping of errors to statuses
and problem bodies (``errors``), and path and text checks (``params``). A face never imports
another face; both import this."""
