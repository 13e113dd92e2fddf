"""Temporal action localisation: evaluation under the THUMOS'14 and
ActivityNet protocols, each reproducing its official tool.

    import zoo.actions

    truth = [{"video": "v1", "start": 0.0, "end": 10.0, "label": "Diving"},
             {"video": "v1", "start": 20.0, "end": 30.0, "label": "Diving"}]
    found = [{"video": "v1", "start": 0.5, "end": 9.5, "label": "Diving", "score": 0.9}]
    zoo.actions.evaluate(found, truth, protocol="thumos14")
    # {"ap": {0.1: {"Diving": 0.5}, ...}, "map": {0.1: 0.5, ...}, "average_map": ...}
    zoo.actions.tiou([0, 10], [[0, 5], [5, 20]])    # array([0.5, 0.25])
"""

from zoo.actions.localise import detect, evaluate_split, split_ground_truth
from zoo.actions.metrics import AMBIGUOUS, DEFAULT_THRESHOLDS, PROTOCOLS, evaluate, tiou

__all__ = ["AMBIGUOUS", "DEFAULT_THRESHOLDS", "PROTOCOLS", "detect", "evaluate",
           "evaluate_split", "split_ground_truth", "tiou"]
