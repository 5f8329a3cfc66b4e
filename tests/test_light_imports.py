"""The pure computations import without torch/mmengine; mmengine checkpoints stay loadable weights-only."""
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, '-c', code + '\nimport sys; print(" ".join(sorted(sys.modules)))'],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_pure_modules_import_without_torch_or_mmengine():
    mods = _modules_after('import ovseg.evaluation.functional, ovseg.structures.panoptic_format, ovseg.vocabulary\n'
                          'import ovseg.evaluation, ovseg.structures')
    heavy = {m for m in mods if m.split('.')[0] in ('torch', 'mmengine', 'mmcv')}
    assert not heavy, f'heavy modules imported: {sorted(heavy)[:10]}'
    assert 'ovseg.evaluation.metrics' not in mods


def test_lazy_names_still_resolve():
    from ovseg.evaluation import PanopticMetric, ReferringSegMetric, SemSegMetric
    from ovseg.structures import SegDataSample
    from ovseg.structures.seg_data_sample import SegDataSample as direct
    assert SegDataSample is direct
    assert {PanopticMetric.__name__, SemSegMetric.__name__, ReferringSegMetric.__name__} == {
        'PanopticMetric', 'SemSegMetric', 'ReferringSegMetric'}
    import ovseg.evaluation
    with pytest.raises(AttributeError, match='no attribute'):
        ovseg.evaluation.NoSuchMetric  # noqa: B018


def test_metrics_registry_finds_lazy_metrics():
    """Configs build metrics by name; the registry imports ovseg.evaluation.metrics itself."""
    code = ('from mmengine.registry import init_default_scope\n'
            'from ovseg.registry import METRICS\n'
            "init_default_scope('ovseg')\n"
            "assert type(METRICS.build(dict(type='ReferringSegMetric'))).__name__ == 'ReferringSegMetric'\n"
            "assert type(METRICS.build(dict(type='PanopticMetric'))).__name__ == 'PanopticMetric'\n")
    subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, check=True, capture_output=True)


def test_registry_import_allow_lists_mmengine_checkpoint_types():
    """`import ovseg` is light; `ovseg.registry` (every config-driven path) registers the safe globals."""
    code = ('import sys, torch\n'
            'import ovseg\n'
            'from mmengine.logging.history_buffer import HistoryBuffer\n'
            'before = HistoryBuffer in torch.serialization.get_safe_globals()\n'
            'import ovseg.registry\n'
            'after = HistoryBuffer in torch.serialization.get_safe_globals()\n'
            'print(before, after)\n')
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ['False', 'True']
