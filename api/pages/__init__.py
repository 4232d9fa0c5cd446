"""Server-rendered pages: the clerk workbench, supervisor dashboard, designer view, progress query.

Their routers are mounted with the API's in ``api.app``; their errors render as pages
(``api.errors``).
"""
