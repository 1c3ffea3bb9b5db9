"""ranker_training: DisRanker training, from click logs to a distilled BERT cross-encoder.

Stages (each a function and a ``ranker`` command; configs are frozen dataclasses in
:mod:`.config`, read from YAML/JSON files, examples in ``configs/``):

=========  ===========================  ====================================================
module     command                      what it does
=========  ===========================  ====================================================
cpt        ``ranker train cpt``         causal LM on query -> clicked title | summary
teacher    ``ranker train teacher``     LLM + LoRA, score = linear(h[end token]), rank loss
label      ``ranker train label``       teacher scores for every candidate (resumable, shards)
distill    ``ranker train distill``     BERT cross-encoder, alpha * MSE + beta * margin-MSE
evaluate   ``ranker eval``              nDCG@k, MAP, MRR, PNR; first-stage and BM25 baselines
recipe     ``ranker train recipe``      all of the above, skipping finished stages
=========  ===========================  ====================================================

Shared pieces: :mod:`.data` (BEIR folders and click logs -> groups, sampling), :mod:`.losses`,
:mod:`.prompt` (how an LLM input is built), :mod:`.loop` (the accelerate training loop,
checkpoints without pickle), :mod:`.errors` (``ConfigError``, ``DataError``: the SDK's
``InputError``). Importing this package imports no torch.
"""
