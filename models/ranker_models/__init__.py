"""ranker_models: the torch-side model definitions that training and packaging both need.

Training builds and saves these models; packaging loads the saved checkpoints to export them.
Both import them from here, so neither imports the other (:mod:`ranker_training` and
:mod:`ranker_quantize` are siblings).

- :mod:`ranker_models.segmented`: the segmented student, a sentence-embedding bi-encoder run
  inside the cross-encoder contract.

Importing this package imports no torch; its modules do. They come with the ``train`` and
``quantize`` extras.
"""

__all__: list[str] = []
