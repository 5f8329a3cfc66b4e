"""Region-captioning metric: the generated captions against reference expressions (RefCOCOg sentences).

The mask-caption loop's own criterion — can the model find the region again from its caption — is the
re-segmentation IoU, scored by ``ReferringSegMetric`` on the same data samples. This metric adds the usual caption
scores when the data has references (``reference_expressions`` in metainfo; RefCOCO-style data through
``ReferringToRegionPair``):

* ``CIDEr`` (CIDEr-D, pycocoevalcap's ``Cider``: n-grams 1-4, sigma 6, document frequencies from the evaluated
  references, ×100);
* ``METEOR`` (pycocoevalcap's ``Meteor``, which runs METEOR 1.5's jar: only when ``java`` is on the PATH, else the
  key is absent and a warning says why);
* ``words`` (mean caption length) and ``empty`` (share of empty captions, %).

Tokenisation: lower case, punctuation dropped, whitespace split — the effect of pycocoevalcap's ``PTBTokenizer``
(a Stanford CoreNLP jar) on plain expressions, without starting Java for it.
"""
from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ovseg.registry import METRICS

_PUNCT = re.compile(r"[^\w\s]")


def tokenize_caption(text: str) -> str:
    """Lower case, punctuation removed, single spaces."""
    return ' '.join(_PUNCT.sub(' ', str(text).lower()).split())


def caption_scores(captions: Sequence[str], references: Sequence[Sequence[str]], meteor: bool | None = None
                   ) -> dict[str, float]:
    """CIDEr-D (and METEOR when ``meteor`` or, for ``None``, when java is available) of ``captions`` against
    ``references`` (one non-empty list per caption), ×100."""
    from pycocoevalcap.cider.cider import Cider

    if len(captions) != len(references):
        raise ValueError(f'{len(captions)} captions for {len(references)} reference lists')
    if any(not refs for refs in references):
        raise ValueError('every caption needs at least one reference')
    res = {i: [tokenize_caption(c)] for i, c in enumerate(captions)}
    gts = {i: [tokenize_caption(r) for r in refs] for i, refs in enumerate(references)}
    out = dict(CIDEr=100.0 * float(Cider().compute_score(gts, res)[0]))
    if meteor is None:
        meteor = shutil.which('java') is not None
    if meteor:
        from pycocoevalcap.meteor.meteor import Meteor

        scorer = Meteor()  # starts the jar; its __del__ stops it
        out['METEOR'] = 100.0 * float(scorer.compute_score(gts, res)[0])
        del scorer
    return out


@METRICS.register_module()
class RegionCaptionMetric(BaseMetric):
    """Caption scores of ``pred_texts[0]`` against ``reference_expressions`` (see the module docstring).

    Args:
        meteor: ``None`` (compute METEOR when java is available), ``True`` (required: error without java) or
            ``False``.
    """

    default_prefix: str | None = 'caption'

    def __init__(self, meteor: bool | None = None, collect_device: str = 'cpu', prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if meteor and shutil.which('java') is None:
            raise RuntimeError('RegionCaptionMetric(meteor=True): METEOR runs a Java jar and no java is on the PATH')
        self.meteor = meteor

    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        for ds in data_samples:
            meta = ds.get('metainfo', ds) if isinstance(ds, Mapping) else ds.metainfo
            texts = meta.get('pred_texts') or ['']
            refs = [r for r in (meta.get('reference_expressions') or []) if r]
            self.results.append((str(texts[0]), list(refs)))

    def compute_metrics(self, results: list) -> dict[str, float]:
        captions = [c for c, _ in results]
        out = dict(words=float(np.mean([len(c.split()) for c in captions])) if captions else 0.0,
                   empty=100.0 * float(np.mean([not c.strip() for c in captions])) if captions else 0.0)
        scored = [(c, r) for c, r in results if r]
        if scored:
            if self.meteor is None and shutil.which('java') is None:
                print_log('RegionCaptionMetric: no java on the PATH, METEOR skipped', logger='current')
            out.update(caption_scores([c for c, _ in scored], [r for _, r in scored], self.meteor))
        if len(scored) < len(results):
            print_log(f'RegionCaptionMetric: {len(results) - len(scored)} of {len(results)} samples have no reference '
                      'expression (only words / empty computed for them)', logger='current')
        print_log('region captions: ' + '  '.join(f'{k} {v:.2f}' for k, v in out.items()), logger='current')
        return out
