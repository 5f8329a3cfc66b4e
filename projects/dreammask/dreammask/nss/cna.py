"""Category Name Association (DreamMask NSS step 1).

Ask an LLM ``n_repeat`` times for ``top_k`` categories that are related to and co-occur with the base
vocabulary; a name becomes *novel* when it appears in at least ``min_count`` different answers and is not a
base category (after normalisation; any synonym or plural of a base name counts as base).
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from mmengine.logging import MMLogger

from ovseg.vocabulary import SynonymIndex, name_variants, normalize_name

from .io import atomic_write_json, read_json
from .llm.base import LLMBackend, LLMError
from .utils import StageSummary, derive_seed, progress

SYSTEM_PROMPT = ('You are a helpful assistant that knows which kinds of objects appear together in everyday '
                 'photographs. Answer with JSON only.')

PROMPT = (
    'Here is a list of object categories from a segmentation dataset:\n{base}\n\n'
    'Generate {top_k} novel object categories that are semantically related to these and frequently '
    'co-occur with them in real scenes, but are NOT in the list (no synonyms or plurals of listed names). '
    'Prefer concrete, visible, segmentable things and surfaces. Use short lower-case English nouns.\n'
    'Answer with a JSON array of {top_k} strings and nothing else, e.g. ["hook", "wheel", "seat"].')


class CNAParseError(ValueError):
    pass


def parse_category_list(text: str, top_k: int | None = None) -> list[str]:
    """Names from an LLM answer: a JSON array (optionally fenced / inside ``{"categories": [...]}``), or
    a numbered / bulleted / comma-separated list. Raises :class:`CNAParseError` when nothing usable is
    found."""
    if not isinstance(text, str) or not text.strip():
        raise CNAParseError('empty answer')
    t = re.sub(r'```[a-zA-Z]*', '', text).strip()
    names = None
    m = re.search(r'\[.*\]', t, re.S)
    if m:
        try:
            data = json.loads(m.group(0))
            if isinstance(data, list):
                names = [
                    d if isinstance(d, str) else (d.get('name') if isinstance(d, dict) else None)
                    for d in data
                ]
        except json.JSONDecodeError:
            names = None
    if names is None and t.startswith('{'):
        try:
            data = json.loads(t)
            for v in data.values():
                if isinstance(v, list):
                    names = [x for x in v if isinstance(x, str)]
                    break
        except json.JSONDecodeError:
            pass
    if names is None:
        lines = [ln.strip() for ln in t.splitlines() if ln.strip()]
        if len(lines) == 1:
            lines = lines[0].split(',')
        names = []
        for ln in lines:
            m2 = re.match(r'^\s*(?:\d+[.)]|[-*\u2022])\s*(.+)$', ln)
            if m2 or len(lines) > 1:
                names.append((m2.group(1) if m2 else ln).strip())
    out, seen = [], set()
    for n in names:
        if not isinstance(n, str):
            continue
        n = n.split(':')[0].split(' - ')[0].strip()
        norm = normalize_name(n)
        if not norm or len(norm) > 40 or len(norm.split()) > 4 or norm in seen:
            continue
        seen.add(norm)
        out.append(norm)
    if not out:
        raise CNAParseError('no category names found')
    return out[:top_k] if top_k else out


def count_novel(answers: list[list[str]], base: SynonymIndex, min_count: int = 2):
    """Count each name once per answer; merge plural variants; split into kept novel / base / rare.

    Returns ``(novel [(name, count)], base_hits {name: count}, rare {name: count})``, sorted by count
    (descending), then name.
    """
    canon: dict[str, str] = {}
    counts: Counter = Counter()
    for names in answers:
        seen = set()
        for n in names:
            key = None
            for v in sorted(name_variants(n)):
                if v in canon:
                    key = canon[v]
                    break
            if key is None:
                key = n
                for v in name_variants(n):
                    canon.setdefault(v, key)
            if key not in seen:
                seen.add(key)
                counts[key] += 1
    novel, base_hits, rare = [], {}, {}
    for name, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if base.lookup(name) is not None:
            base_hits[name] = c
        elif c < min_count:
            rare[name] = c
        else:
            novel.append((name, c))
    return novel, base_hits, rare


def run_cna(llm: LLMBackend, base: SynonymIndex, out_dir, n_repeat: int = 5, top_k: int = 30,
            min_count: int = 2, max_attempts: int = 3, seed: int = 0,
            show_progress: bool = True) -> StageSummary:
    """Run CNA with per-repeat caching in ``out_dir/responses`` (a rerun only asks for missing repeats).

    A repeat whose answers never parsed is final (``rejected``); one lost to LLM errors (server down,
    timeouts) is ``failed``: recorded in ``repeat_XX.failed.json`` for diagnosis and asked again next run.
    """
    logger = MMLogger.get_current_instance()
    out_dir = Path(out_dir)
    resp_dir = out_dir / 'responses'
    summary = StageSummary('cna')
    base_list = ', '.join(base.names)
    messages = [{
        'role': 'system',
        'content': SYSTEM_PROMPT
    }, {
        'role': 'user',
        'content': PROMPT.format(base=base_list, top_k=top_k)
    }]
    answers = []
    for r in progress(range(n_repeat), total=n_repeat, desc='cna', enable=show_progress):
        path = resp_dir / f'repeat_{r:02d}.json'
        failed_path = resp_dir / f'repeat_{r:02d}.failed.json'
        if path.exists():
            rec = read_json(path)
            summary.skipped += 1
        else:
            summary.generated += 1
            rec = {'repeat': r, 'status': 'failed', 'reason': None, 'attempts': 0, 'names': []}
            llm_failed = False
            for a in range(max_attempts):
                rec['attempts'] = a + 1
                try:
                    text = llm.chat(messages, seed=derive_seed(seed, 'cna', r, a))
                    rec['names'] = parse_category_list(text, top_k)
                    rec['status'], rec['reason'], rec['raw'] = 'ok', None, text
                    break
                except LLMError as e:
                    rec['reason'], llm_failed = e.reason, True
                    if not e.retryable:
                        break
                except CNAParseError:
                    rec['reason'], llm_failed = 'unparsable_answer', False
                    rec['raw'] = text
            if rec['status'] != 'ok':
                logger.warning(f'CNA repeat {r}: skipped after {rec["attempts"]} attempt(s): {rec["reason"]}'
                               + (' (asked again on the next run)' if llm_failed else ''))
            if rec['status'] != 'ok' and llm_failed:
                atomic_write_json(failed_path, rec)  # diagnosis only: not a finished repeat
                summary.fail(rec['reason'] or 'llm_error')
                continue
            atomic_write_json(path, rec)
            if failed_path.exists():
                failed_path.unlink()
        if rec['status'] == 'ok':
            answers.append(rec['names'])
        else:
            summary.reject(rec['reason'] or 'failed')
    novel, base_hits, rare = count_novel(answers, base, min_count)
    summary.kept = len(novel)
    summary.extra.update(answers_ok=len(answers), n_repeat=n_repeat, novel_categories=len(novel),
                         names_filtered_as_base=len(base_hits), names_below_min_count=len(rare))
    atomic_write_json(out_dir / 'base_categories.json', {'num_categories': len(base), **base.to_json()})
    if not answers:  # no novel_categories.json from zero answers: later stages must not run on an empty list
        return summary
    atomic_write_json(
        out_dir / 'novel_categories.json', {
            'n_repeat': n_repeat,
            'top_k': top_k,
            'min_count': min_count,
            'answers_ok': len(answers),
            'llm': llm.describe(),
            'categories': [{
                'name': n,
                'count': c
            } for n, c in novel],
            'filtered_as_base': [{
                'name': n,
                'count': c
            } for n, c in base_hits.items()],
            'below_min_count': [{
                'name': n,
                'count': c
            } for n, c in rare.items()]
        })
    return summary


def load_categories(out_dir) -> tuple[list[str], list[str]]:
    """(base names, novel names) from a finished CNA output folder."""
    out_dir = Path(out_dir)
    base = [c['name'] for c in read_json(out_dir / 'base_categories.json')['categories']]
    novel = [c['name'] for c in read_json(out_dir / 'novel_categories.json')['categories']]
    return base, novel
