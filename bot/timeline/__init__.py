"""The timeline of one target: what happened to it over a period, lane by lane, and its picture.

`building.py` is the pure model and its builder over plain objects (recorded changes, pods as API
dicts, Warning Events, alert records) plus the words that say what the picture shows; `drawing.py`
turns a `Timeline` into a PNG with matplotlib. Importing matplotlib takes about a second, so only the
code that draws imports `drawing` (the Slack edge and `k8sbot ask --png`, each lazily), never a verb.
"""
