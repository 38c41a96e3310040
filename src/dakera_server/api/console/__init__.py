"""The web console: static files under ``/console``, served from the package.

The pages are plain ES modules, CSS and one HTML file in ``static/`` (no build step, no
third-party code, no network at run time). They hold no data: everything they show comes from
the REST API, called by the browser with the API key the user signs in with.
"""
