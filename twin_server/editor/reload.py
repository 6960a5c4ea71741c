"""Put a newly saved site into the running server: no restart, no reading lost.

The ingest keeps running throughout: its MQTT session, queue and writer thread are never
touched, only its device-scope filter is swapped (one attribute assignment, atomic for the
writer thread), so a reading arriving during the swap is checked against the old site or
the new one, and a device in both is accepted either way. The site id cannot change here
(the subscription and the journal are keyed by it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from twin_server.site import Site

__all__ = ["analysis_params_for", "apply_site", "empty_site"]

log = logging.getLogger("twin_server.editor")


def empty_site(site_id: str) -> Site:
    """A site with nothing on it yet, served until the editor saves its first version.

    Not a valid site file (a site needs a machine); the server only runs it: every device is
    unknown to it, so what the Pis send is kept as dead letters the editor lists.
    """
    from pydantic import TypeAdapter

    from twin_server.site import Id

    TypeAdapter(Id).validate_python(site_id)
    return Site.model_construct(site=site_id, machines=[])


def analysis_params_for(site: Site, site_path: Path | None, current: Any = None) -> Any:
    """Analysis parameters for the site: its survey's fingerprint map, if it has one.

    Raises
    ------
    twin_server.analysis.survey.SurveyError
        A survey file is missing or unusable.
    """
    has_survey = site.survey is not None and (site.survey.points is not None or site.survey.walks)
    if not has_survey or site_path is None:
        if current is not None and getattr(current, "survey_map", None) is not None:
            import dataclasses

            return dataclasses.replace(current, survey_map=None)
        return current
    from twin_server.analysis import AnalysisParams
    from twin_server.analysis.survey import survey_map

    smap = survey_map(site, Path(site_path).resolve().parent, say=log.info)
    if current is None:
        return AnalysisParams(survey_map=smap)
    import dataclasses

    return dataclasses.replace(current, survey_map=smap)


def apply_site(app: Any, site: Site, params: Any) -> None:
    """Make ``site`` the site the app serves (same id), with analysis ``params``."""
    ctx = app.state.twin
    old: Site = ctx.settings.site
    if site.site != old.site:
        raise ValueError(f"the running server serves site {old.site!r}; it cannot become {site.site!r}")
    ctx.settings.site = site
    ctx.settings.analysis_params = params
    ingest = ctx.ingest
    if ingest is not None and ingest.scope is not None:
        from twin_server.auth.device_scope import DeviceScope
        from twin_server.ingest.subscriber import ScopeFilter

        ingest.scope = ScopeFilter(DeviceScope.of(site))
    cache = ctx.analysis
    with cache._lock:
        cache.site = site
        cache.params = params
        cache._cache.clear()  # zones, machines and the survey may have changed: analyse again
    provider = getattr(app.state, "replay_provider", None)
    if provider is not None and hasattr(provider, "_site"):
        provider._site = site
    tracker = getattr(app.state, "commissioning", None)
    if tracker is not None:
        from twin_server.live.commissioning import MachineSession

        with tracker._lock:
            tracker.site = site
            now = tracker.clock_ns()
            tracker.sessions = {
                m.id: tracker.sessions.get(m.id) or MachineSession(m.id, now, tracker._last_id)
                for m in site.machines
            }
            tracker._devices = {m.device: m.id for m in site.machines if m.device}
    failures = getattr(app.state, "scene_failures", None)
    if isinstance(failures, dict):
        failures.pop(site.site, None)  # the scene is rebuilt from the new file on the next request
    log.info(
        "site %s reloaded: %d machine(s), %d receiver(s)", site.site, len(site.machines), len(site.receivers)
    )
