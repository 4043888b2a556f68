"""Experiments: the leaf of the package that nothing else imports. The toy world's pipeline (:mod:`.toy`), its warm
starts (:mod:`.warm_start`), the localisation probes (:mod:`.probes`), the ablations (:mod:`.ablations`), the
reward sanity checks (:mod:`.sanity`), the benchmarks (:mod:`.bench`) and the notebook runner (:mod:`.notebooks`)."""
