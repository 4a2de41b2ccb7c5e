"""A 95% bootstrap interval of Cohen's kappa: how far a kappa from a few dozen labels can be trusted.

Shared by the benches that compare verdicts with labels (judge calibration, short-answer agreement, containment
against the judge)."""

from __future__ import annotations

import random

from experiments import agreement


def kappa_interval(labels: list[int], verdicts: list[int], rng: random.Random, resamples: int = 2000
                   ) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of kappa over ``resamples`` resamples of the pairs (with replacement);
    a resample whose labels are all one class has no kappa and is left out."""
    values = []
    for _ in range(resamples):
        picks = [rng.randrange(len(labels)) for _ in labels]
        kappa = agreement([labels[i] for i in picks], [verdicts[i] for i in picks]).kappa
        if kappa is not None:
            values.append(kappa)
    values.sort()
    return values[int(0.025 * len(values))], values[int(0.975 * len(values)) - 1]
