"""Data, models and training shared by the experiments (reproduction code, not a library).

* :mod:`repro.tasks.digits` -- scikit-learn's digits, the one loader :func:`~repro.tasks.digits.load_digits_split`
  (standardised three-way split, or the released ghosts-of-softmax code's pixels / 16 split);
* :mod:`repro.tasks.mnist` -- MNIST, Fashion-MNIST and their 20-class union from the verified
  data cache of :mod:`repro.data` (paper scale); :mod:`repro.tasks.etth1` -- ETTh1, 12/4/4 months;
* :mod:`repro.tasks.batches` -- :class:`~repro.tasks.batches.BatchStream`, reshuffled mini-batches;
* :mod:`repro.tasks.models`, :mod:`repro.tasks.zoo`, :mod:`repro.tasks.resnet` -- the networks;
* :mod:`repro.tasks.training` -- :func:`~repro.tasks.training.accuracy`,
  :func:`~repro.tasks.training.evaluate`, :func:`~repro.tasks.training.cross_entropy_backward` and
  the one training loop :func:`~repro.tasks.training.train_classifier`;
* :mod:`repro.tasks.mlp_run` -- one PolyStep-or-Adam run of the quickstart MLP benchmark.
"""
