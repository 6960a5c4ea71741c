"""The browser site editor's server side: the site file as a document, saved with history.

* :mod:`~twin_server.editor.yaml_doc` writes an edited document back into the YAML text,
  keeping comments, key order and flow style where the values did not change.
* :mod:`~twin_server.editor.store` saves it atomically, refuses a stale save, keeps every
  version (undo) and the refused drafts.
* :mod:`~twin_server.editor.checks` is the live check: the site validator's problems by shape,
  plus warnings (overlapping zones) that a save must confirm.
* :mod:`~twin_server.editor.plan` accepts a floor plan (PNG, JPEG, PDF, SVG).
* :mod:`~twin_server.editor.devices` lists the Pis, receivers and beacons seen on the broker.
* :mod:`~twin_server.editor.walks` records a survey walk tapped on a tablet.
* :mod:`~twin_server.editor.reload` puts a saved site into the running server.

The routes are in :mod:`twin_server.api.editor`.
"""
