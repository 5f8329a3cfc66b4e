"""House rules that a reviewer would otherwise check by hand: ruff's pyflakes / pycodestyle / import-order rules and
one type-hint style (builtin generics and ``X | None``; configured in pyproject.toml), and no comment, docstring or
doc that points outside the repository."""
import shutil
import subprocess
import sys

import pytest

CODE = ['ovseg', 'projects', 'tools', 'benchmarks', 'tests', 'configs']


def test_ruff_passes(repo_root):
    ruff = shutil.which('ruff') or str(repo_root / '.venv' / 'bin' / 'ruff')
    try:
        out = subprocess.run([ruff, 'check', *CODE], cwd=repo_root, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        out = subprocess.run([sys.executable, '-m', 'ruff', 'check', *CODE], cwd=repo_root, capture_output=True,
                             text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


@pytest.mark.parametrize('folder', CODE + ['docs'])
def test_nothing_points_outside_the_repository(repo_root, folder):
    """Cite papers and official files by name; notes beside the checkout do not ship with it."""
    offenders = []
    for path in sorted((repo_root / folder).rglob('*')):
        if path.suffix not in ('.py', '.md', '.sh') or not path.is_file() or path.name == 'test_code_style.py':
            continue
        text = path.read_text(encoding='utf-8', errors='replace')
        if '../shared/' in text or 'shared/reference' in text:
            offenders.append(str(path.relative_to(repo_root)))
    assert offenders == []
