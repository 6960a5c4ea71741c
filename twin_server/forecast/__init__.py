"""Forecasts: when runs end, when changeovers finish, the operator's next hour, the shift end.

Pure functions over analysed shifts (:mod:`.history`, :mod:`.model`, :mod:`.engine`); the
journal-backed :class:`~twin_server.forecast.service.ForecastService` is what the live server,
the API route and ``python -m twin_server forecast`` use. See ``docs/forecast.md``.
"""

from twin_server.forecast.engine import LANE_STATES, Forecast, MachineForecast, QueueItem, forecast
from twin_server.forecast.history import DayRecords, day_records, truncate_result
from twin_server.forecast.model import ForecastParams, SiteModel, fit_model

__all__ = [
    "LANE_STATES",
    "DayRecords",
    "Forecast",
    "ForecastParams",
    "MachineForecast",
    "QueueItem",
    "SiteModel",
    "day_records",
    "fit_model",
    "forecast",
    "truncate_result",
]
