"""Studies: "Are GANs Created Equal?" (Lucic et al. 2018) as one command.

A study trains every model of a list with its default configuration (draw 0) and N random
hyperparameter draws from the model's search space (:mod:`ganbench.search_space`), each
draw over S seeds, through the one training loop, and evaluates every run with the one
evaluation pass on a held-out split. Optuna's storage holds the trials, so any number of
workers on any number of machines share a study (:mod:`ganbench.study.engine`); the report
(:mod:`ganbench.study.report`) gives the distribution of scores per model, the best score
reached as a function of the budget, and whether two models are distinguishable at all
(:mod:`ganbench.study.statistics`).

The trials of a study, as the report reads them: a pandas DataFrame, one row per run::

    model     str    registered model name
    draw      int    0 = the model's default configuration, 1..N = random draws
    seed      int    training seed
    value     float  the study's metric for the run; NaN when it diverged or failed
    outcome   str    "ok", "diverged" (non-finite losses or metric) or "failed" (the run
                     raised after every retry)
    learned   bool   value better than LEARNED_FRACTION x the untrained generator's
                     (lower-is-better metrics; the mirror for higher-is-better); False
                     unless outcome is "ok"
    params    str    JSON of the draw's searched values ({} for draw 0)
    seconds   float  training + evaluation wall time
    images    int    real images the discriminator saw
    steps     int    generator steps
    trial     int    Optuna trial number

and its protocol, a dict: name, models, dataset, split, extractor, metric,
higher_is_better, num_samples, steps, batch_size, seeds, trials (random draws per model
besides draw 0), sampler, scale, study_seed, search_spaces ({model: search_space.to_json}),
untrained ({model: the untrained generator's value}), command, versions, storage, created.
"""

from ganbench.testing import LEARNING_FID_RATIO as LEARNED_FRACTION  # noqa: E402,F401 -- the learning tests' rule
