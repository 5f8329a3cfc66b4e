"""NSS orchestration: config-driven stages with per-scene state, resumable and deterministic.

Work directory::

    cna/               base_categories.json, novel_categories.json, responses/repeat_XX.json
    layouts_dataset/   scene_XXXXX.{json,html,png}, real_XXXXX.png
    processed_dataset/ images/, masks/, scene_XXXXX.json
    state/<stage>/scene_XXXXX.json   per-scene outcome (done / rejected + reason); its presence = finished
    state/<stage>/scene_XXXXX.failed.json   an error (LLM outage, a crashing backend): retried next run
    summary/<stage>.json             counts of the last run of the stage, plus totals over all scenes
    logs/nss_<time>.log

Every scene's randomness comes from ``derive_seed(seed, stage, scene index)``, so a resumed run writes the
same bytes as an uninterrupted one, whatever order or subset of scenes was done before.

A stage fails the run (:class:`NSSStageError`, after writing its summary) when it produced nothing or when
more than ``max_failed_share`` (config, default 0.2) of the items it attempted failed with errors; the
failed items are retried by the next run, so rerunning after fixing the cause completes the work.
"""
from __future__ import annotations

import io
import time
from collections import Counter
from pathlib import Path

import numpy as np
from mmengine.config import Config
from mmengine.logging import MMLogger
from PIL import Image

from ovseg.vocabulary import SynonymIndex

from .cna import run_cna
from .errors import NSSError
from .io import atomic_save_png, atomic_write_json, atomic_write_text, clean_temp_files, read_json
from .layout.draw import draw_layout_png, layout_html
from .layout.generators import sample_categories
from .layout.schema import Layout
from .masks.selection import SelectionConfig, select_objects
from .masks.writer import write_processed_scene
from .redact import RedactingFilter
from .registry import LAYOUT_GENERATORS, LLMS, MASK_SCORERS, RENDERERS, build
from .render.base import RenderError
from .utils import StageSummary, derive_seed, progress, real_name, scene_id
from .vocab import load_base_vocabulary

# LayoutResult reasons of llm.base.LLMError start with this: the LLM could not be reached or answered with an
# error (timeout, refused connection, HTTP 4xx/5xx, broken protocol). Retried by the next run, never final.
LLM_FAILURE_PREFIX = 'llm_'

STAGES = ('cna', 'layout', 'render', 'masks')
DEFAULT_MAX_FAILED_SHARE = 0.2  # ovseg's choice: a few lost items are retried later; an outage stops the run


class NSSStageError(NSSError):
    """A stage produced nothing or lost too many items to errors; the message lists the reasons."""


class NSSPipeline:

    def __init__(self, cfg: Config | dict, work_dir: str | None = None, logger: MMLogger | None = None):
        self.cfg = cfg if isinstance(cfg, Config) else Config(cfg)
        self.work_dir = Path(work_dir or self.cfg.get('work_dir', 'work_dirs/nss'))
        self.seed = int(self.cfg.get('seed', 0))
        self.num_scenes = int(self.cfg.get('num_scenes', 10))
        canvas = self.cfg.get('canvas', dict(width=1024, height=1024))
        self.width, self.height = int(canvas['width']), int(canvas['height'])
        self.show_progress = bool(self.cfg.get('show_progress', True))
        self.max_failed_share = float(self.cfg.get('max_failed_share', DEFAULT_MAX_FAILED_SHARE))
        self.dirs = {
            k: self.work_dir / k
            for k in ('cna', 'layouts_dataset', 'processed_dataset', 'state', 'summary', 'logs')
        }
        if logger is None:
            self.dirs['logs'].mkdir(parents=True, exist_ok=True)
            stamp = time.strftime('%Y%m%d_%H%M%S')
            logger = MMLogger.get_instance(f'nss-{self.work_dir.resolve()}-{stamp}-{id(self)}',
                                           log_file=str(self.dirs['logs'] / f'nss_{stamp}.log'))
        for handler in logger.handlers:  # the log file is written output too: no credentials in it
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
        self.logger = logger
        self.components: dict = {}

    # ------------------------------------------------------------------------------------ set-up
    def _llm(self, stage_cfg):
        llm_cfg = stage_cfg.get('llm') or self.cfg.get('llm')
        if llm_cfg is None:
            raise ValueError('no LLM configured: set `llm=dict(type=...)` (or the stage\'s own `llm`)')
        return build(LLMS, llm_cfg)

    def build_components(self, stages):
        """Build every backend the requested stages need, before any work (fail fast on missing models)."""
        c = self.components
        if 'cna' in stages:
            c['cna_llm'] = self._llm(self.cfg.cna)
        if 'layout' in stages:
            gen = dict(self.cfg.layout.generator)
            if gen.get('type') == 'LLMLayoutGenerator' and gen.get('llm') is None:
                gen['llm'] = self.cfg.get('llm')
            c['layout_gen'] = build(LAYOUT_GENERATORS, gen)
        if 'render' in stages or 'masks' in stages:
            c['renderer'] = build(RENDERERS, self.cfg.render.renderer) if 'render' in stages or \
                self.cfg.masks.scorer.get('type') == 'ProceduralOracleScorer' else None
        if 'masks' in stages:
            sc = dict(self.cfg.masks.scorer)
            if sc.get('type') == 'SamClipScorer':
                sc.setdefault('seed', self.seed)
            c['scorer'] = build(MASK_SCORERS, sc)
        return c

    def base_vocabulary(self) -> SynonymIndex:
        bv = self.cfg.get('base_vocabulary', dict(source='coco'))
        return load_base_vocabulary(bv.get('source'), bv.get('names'))

    def categories(self) -> tuple[SynonymIndex, list[str], list[str]]:
        base = self.base_vocabulary()
        novel_file = self.dirs['cna'] / 'novel_categories.json'
        if novel_file.is_file():
            novel = [c['name'] for c in read_json(novel_file)['categories']]
        elif self.cfg.layout.get('novel_categories') is not None:
            novel = list(self.cfg.layout.novel_categories)
        else:
            raise FileNotFoundError(f'{novel_file} does not exist: run the `cna` stage first '
                                    f'(or set layout.novel_categories in the config)')
        vocab = SynonymIndex(base.synonyms + [[n] for n in novel if base.lookup(n) is None])
        return vocab, base.names, [n for n in novel if base.lookup(n) is None]

    # ------------------------------------------------------------------------------------ stages
    def run(self, stages=STAGES) -> dict:
        stages = [s for s in STAGES if s in stages]
        for d in self.dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        n_tmp = clean_temp_files(self.work_dir)
        if n_tmp:
            self.logger.info(f'removed {n_tmp} temporary file(s) left by an interrupted run')
        self.build_components(stages)
        atomic_write_text(self.work_dir / 'config.py', self.cfg.pretty_text)
        summaries = {}
        for s in stages:
            t0 = time.time()
            summ = getattr(self, f'stage_{s}')()
            summ.extra['seconds'] = round(time.time() - t0, 3)
            atomic_write_json(self.dirs['summary'] / f'{s}.json', summ.to_dict())
            self.logger.info(summ.line() + f' in {summ.extra["seconds"]:.1f}s')
            summaries[s] = summ.to_dict()
            self._check_stage(s, summ)
        return summaries

    def _check_stage(self, stage: str, summ) -> None:
        """Raise when the stage produced nothing, or lost more than ``max_failed_share`` of its items."""
        failed = sum(summ.failed.values())
        attempted = summ.generated if stage != 'masks' else summ.extra.get('scenes_attempted', 0)
        reasons = dict(sorted((summ.failed + summ.rejected).items()))
        if attempted and failed > self.max_failed_share * attempted:
            raise NSSStageError(f'[{stage}] {failed} of {attempted} items failed with errors {dict(summ.failed)} '
                                f'(more than max_failed_share={self.max_failed_share:g}); they are retried when you '
                                'rerun after fixing the cause. Summary: ' + str(self.dirs['summary'] / f'{stage}.json'))
        done_before = self._totals(stage)['scenes_by_status'].get('done', 0) if stage != 'cna' else summ.skipped
        if attempted and summ.kept == 0 and not done_before:
            raise NSSStageError(f'[{stage}] produced nothing from {attempted} items; reasons: {reasons or "none"}')

    def _fail(self, stage: str, i: int, summ, reason: str, detail: str) -> None:
        """An error on one item: recorded for diagnosis, not as finished (the next run retries it)."""
        summ.fail(reason)
        atomic_write_json(self._failed_state(stage, i), {'status': 'failed', 'reason': reason, 'detail': detail})

    def _failed_state(self, stage, i) -> Path:
        return self.dirs['state'] / stage / f'{scene_id(i)}.failed.json'

    def _finish(self, stage: str, i: int, record: dict) -> None:
        atomic_write_json(self._state(stage, i), record)
        failed = self._failed_state(stage, i)
        if failed.exists():
            failed.unlink()

    def stage_cna(self) -> StageSummary:
        c = self.cfg.cna
        return run_cna(self.components['cna_llm'], self.base_vocabulary(), self.dirs['cna'],
                       n_repeat=c.get('n_repeat', 5), top_k=c.get('top_k',
                                                                  30), min_count=c.get('min_count', 2),
                       max_attempts=c.get('max_attempts',
                                          3), seed=self.seed, show_progress=self.show_progress)

    def _state(self, stage, i) -> Path:
        return self.dirs['state'] / stage / f'{scene_id(i)}.json'

    def _totals(self, stage) -> dict:
        cnt = Counter()
        reasons = Counter()
        for i in range(self.num_scenes):
            p = self._state(stage, i)
            if p.is_file():
                st = read_json(p)
                cnt[st['status']] += 1
                if st.get('reason'):
                    reasons[st['reason']] += 1
                for k, v in st.get('objects_rejected', {}).items():
                    reasons[k] += v
                cnt['objects_kept'] += st.get('objects_kept', 0)
            elif self._failed_state(stage, i).is_file():
                cnt['failed'] += 1
        return {
            'scenes_by_status': dict(sorted((k, v) for k, v in cnt.items() if k != 'objects_kept')),
            'objects_kept': cnt['objects_kept'],
            'reasons': dict(sorted(reasons.items()))
        }

    def stage_layout(self) -> StageSummary:
        lc = self.cfg.layout
        gen = self.components['layout_gen']
        vocab, base_names, novel = self.categories()
        out = self.dirs['layouts_dataset']
        summ = StageSummary('layout')
        summ.extra['novel_categories'] = len(novel)
        palette_seed = int(lc.get('palette_seed', 0))
        for i in progress(range(self.num_scenes), self.num_scenes, 'layout', self.show_progress):
            st_path = self._state('layout', i)
            if st_path.is_file():
                summ.skipped += 1
                continue
            summ.generated += 1
            rng = np.random.default_rng(derive_seed(self.seed, 'layout-categories', i))
            cats = sample_categories(rng, base_names, novel, lc.get('min_categories', 5),
                                     lc.get('max_categories', 8), lc.get('min_novel', 1),
                                     lc.get('cooccurrence'), lc.get('cooc_boost', 3.0))
            try:
                res = gen.generate(scene_id(i), cats, derive_seed(self.seed, 'layout', i), self.width,
                                   self.height, vocab)
            except Exception as e:  # a crashing generator is one failed scene (retried next run), not a dead run
                self.logger.warning(f'{scene_id(i)}: layout generator failed: {type(e).__name__}: {e}')
                self._fail('layout', i, summ, 'generator_error', f'{type(e).__name__}: {e}')
                continue
            if res.layout is None and str(res.reason).startswith(LLM_FAILURE_PREFIX):
                self._fail('layout', i, summ, res.reason, f'attempts: {res.attempt_reasons}')
                continue
            if res.layout is None:
                summ.reject(res.reason)
                self._finish(
                    'layout', i, {
                        'status': 'rejected',
                        'reason': res.reason,
                        'attempts': res.attempts,
                        'attempt_reasons': res.attempt_reasons,
                        'categories': cats
                    })
                continue
            lay = res.layout
            atomic_write_text(out / f'{lay.scene_id}.html', layout_html(lay, palette_seed))
            atomic_save_png(out / f'{lay.scene_id}.png', draw_layout_png(lay, palette_seed))
            atomic_write_json(out / f'{lay.scene_id}.json', lay.to_json())
            summ.kept += 1
            self._finish(
                'layout', i, {
                    'status': 'done',
                    'reason': None,
                    'attempts': res.attempts,
                    'attempt_reasons': res.attempt_reasons,
                    'num_objects': len(lay.objects)
                })
        if hasattr(gen, 'stats'):
            summ.extra['generator_stats'] = dict(gen.stats)
        summ.extra['totals'] = self._totals('layout')
        return summ

    def _layout(self, i) -> Layout | None:
        p = self.dirs['layouts_dataset'] / f'{scene_id(i)}.json'
        return Layout.from_json(read_json(p)) if p.is_file() else None

    def stage_render(self) -> StageSummary:
        renderer = self.components['renderer']
        out = self.dirs['layouts_dataset']
        summ = StageSummary('render')
        resize = bool(self.cfg.render.get('resize_to_canvas', True))
        todo = []
        for i in range(self.num_scenes):
            if self._state('render', i).is_file():
                summ.skipped += 1
            elif self._layout(i) is not None:
                todo.append(i)
        bs = max(1, int(getattr(renderer, 'batch_size', 1)))
        batches = [todo[k:k + bs] for k in range(0, len(todo), bs)]
        for batch in progress(batches, len(batches), 'render', self.show_progress):
            layouts = [self._layout(i) for i in batch]
            seeds = [derive_seed(self.seed, 'render', i) for i in batch]
            try:
                images = renderer.render_batch(layouts, seeds)
            except Exception as e:  # a crashing batch fails its scenes (retried next run), the run goes on
                self.logger.warning(f'render batch {batch} failed: {type(e).__name__}: {e}')
                for i in batch:
                    summ.generated += 1
                    self._fail('render', i, summ, 'render_error', f'{type(e).__name__}: {e}')
                continue
            for i, lay, img in zip(batch, layouts, images):
                summ.generated += 1
                if isinstance(img, RenderError):
                    summ.reject(img.reason)
                    self._finish('render', i, {'status': 'rejected', 'reason': img.reason})
                    continue
                img = img.convert('RGB')
                orig = img.size
                if resize and img.size != (lay.canvas_width, lay.canvas_height):
                    img = img.resize((lay.canvas_width, lay.canvas_height), Image.BICUBIC)
                atomic_save_png(out / real_name(i), img)
                summ.kept += 1
                self._finish('render', i, {
                    'status': 'done',
                    'reason': None,
                    'generated_size': list(orig)
                })
        summ.extra['totals'] = self._totals('render')
        return summ

    def stage_masks(self) -> StageSummary:
        mc = self.cfg.masks
        scorer = self.components['scorer']
        sel = SelectionConfig(mc.get('clip_threshold', 0.25), mc.get('max_uncertainty', 0.30),
                              mc.get('min_mask_area', 1))
        keep_empty = bool(mc.get('keep_empty_scenes', False))
        src, dst = self.dirs['layouts_dataset'], self.dirs['processed_dataset']
        summ = StageSummary('masks')
        scenes_written = scenes_empty = 0
        todo = []
        for i in range(self.num_scenes):
            if self._state('masks', i).is_file():
                summ.skipped += 1
            elif (src / real_name(i)).is_file() and self._layout(i) is not None:
                todo.append(i)
        for i in progress(todo, len(todo), 'masks', self.show_progress):
            lay = self._layout(i)
            png = (src / real_name(i)).read_bytes()
            with Image.open(io.BytesIO(png)) as im:
                image = np.asarray(im.convert('RGB'))
            if image.shape[:2] != (lay.canvas_height, lay.canvas_width):
                summ.reject('image_size_mismatch')
                self._finish('masks', i, {
                    'status': 'rejected',
                    'reason': 'image_size_mismatch'
                })
                continue
            ctx = {
                'renderer': self.components.get('renderer'),
                'render_seed': derive_seed(self.seed, 'render', i)
            }
            try:
                scores = scorer.score_scene(image, lay, ctx)
            except Exception as e:  # an error, not a decision about the scene: retried next run
                self.logger.warning(f'{lay.scene_id}: scoring failed: {type(e).__name__}: {e}')
                self._fail('masks', i, summ, 'scoring_error', f'{type(e).__name__}: {e}')
                continue
            decisions = select_objects(scores, sel)
            kept, rej = [], Counter()
            for j, reason in decisions:
                summ.generated += 1
                if reason is None:
                    kept.append(
                        (j, scores['masks'][j], scores['clip_scores'][j], scores['mask_uncertainty'][j]))
                else:
                    rej[reason] += 1
                    summ.reject(reason)
            summ.kept += len(kept)
            if kept or keep_empty:
                write_processed_scene(dst, lay, png, kept)
                scenes_written += 1
                status = 'done'
            else:
                scenes_empty += 1
                status = 'no_objects_kept'
            self._finish(
                'masks', i, {
                    'status': status,
                    'reason': None,
                    'objects_kept': len(kept),
                    'objects_rejected': dict(sorted(rej.items())),
                    'scores': [{
                        'index': j,
                        'clip_score': round(float(scores['clip_scores'][j]), 6),
                        'mask_uncertainty': round(float(scores['mask_uncertainty'][j]), 6),
                        'decision': reason or 'kept'
                    } for j, reason in decisions]
                })
        summ.extra.update(scenes_attempted=len(todo), scenes_written=scenes_written,
                          scenes_without_kept_objects=scenes_empty,
                          clip_threshold=sel.clip_threshold, max_uncertainty=sel.max_uncertainty,
                          scorer=scorer.describe(), totals=self._totals('masks'))
        return summ
