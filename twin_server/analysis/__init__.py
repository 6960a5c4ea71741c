"""Analysis of a recorded shift: alignment, machine state, zones, lag correction, tasks.

One implementation serves ``python -m twin_server analyze`` and the live server::

    from twin_server.analysis import analyze
    result = analyze(readings_frame, site)
"""

from twin_server.analysis.params import AnalysisParams
from twin_server.analysis.pipeline import analyze

__all__ = ["AnalysisParams", "analyze"]
