"""The bundled TensorFlow/Keras trainer for datasets written by ``leafprep build``.

- :mod:`trainers.models`: the model registry (``softmax``, ``convnet``, ``fast``, ``convnet-bn``, ``leaf``,
  and for leaf descriptors ``descriptors`` and ``leaf-fused``, started at LDA);
- :mod:`trainers.train`: :func:`~trainers.train.train`, a run folder with the model, the
  preprocessing settings, metrics, history and TensorBoard logs; the recipe for a dataset's kind
  (:func:`~trainers.train.default_recipe`);
- :mod:`trainers.runs`: loading a run (Keras safe mode) and its settings;
- :mod:`trainers.evaluate`: accuracy, per-class precision and recall, confusion matrix, worst mistakes;
- :mod:`trainers.predict`: a run's predictions on your own photos, normalised (and for leaves described) as its data were.
- :mod:`trainers.visualize` and :mod:`trainers.prior`: pictures of what a run learned; dreams on a prior learnt from its records.

Everything here imports TensorFlow: ``leafprep`` itself loads this package only
for ``leafprep train``, ``evaluate`` and ``predict``.
"""
