"""The twin side: observations in, fit metrics, calibration, replay and sync.

Everything here builds its model through the engines' own builders and the scenario's
interventions (:func:`citytwin.interventions.apply`), never a second model:

- :mod:`citytwin.twin.observations` reads and validates counts, meters and incident logs;
- :mod:`citytwin.twin.calibrate` has the fit metrics (GEH, CV(RMSE), NMBE) and estimators;
- :mod:`citytwin.twin.sync` replays observations against the twin and calibrates a scenario.
"""
