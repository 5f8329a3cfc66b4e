"""tools/seem_demo.py with the tiny random config: points / box / scribble / text prompts and --classes draw an
image of the input size; converted weights load through --checkpoint; user errors are one line."""
import sys

import cv2
import numpy as np
import pytest
import torch

from ovseg.cli import run_tool
from tests.projects.seem_ft.tiny_seem import build_tiny

sys.path.insert(0, 'tools')
import seem_demo  # noqa: E402

CONFIG = 'configs/seem_ft/seem_focalt-tiny_toy-demo.py'


@pytest.fixture()
def image(tmp_path):
    img = np.random.RandomState(0).randint(0, 255, (48, 60, 3), dtype=np.uint8)
    path = tmp_path / 'img.png'
    cv2.imwrite(str(path), img)
    return str(path)


def test_visual_and_text_prompts(tmp_path, image):
    scribble = np.zeros((48, 60), dtype=np.uint8)
    scribble[10, 5:50] = 255
    cv2.imwrite(str(tmp_path / 'stroke.png'), scribble)
    ckpt = tmp_path / 'tiny.pth'
    torch.save({'state_dict': build_tiny(criterion=False, seed=3).state_dict(), 'meta': {}}, ckpt)
    out = tmp_path / 'out' / 'vis.png'
    args = seem_demo.parse_args([image, '--config', CONFIG, '--checkpoint', str(ckpt), '--points', '10,12',
                                 '30,20', '--box', '5,5,40,30', '--scribble', str(tmp_path / 'stroke.png'),
                                 '--text', 'the red thing', '--out', str(out), '--device', 'cpu'])
    summary = seem_demo.run(args)
    assert summary['labels'] == ['point 10,12', 'point 30,20', 'box 0', 'stroke.png', 'the red thing']
    drawn = cv2.imread(str(out))
    assert drawn.shape == (48, 60, 3)


def test_classes_panoptic_and_errors(tmp_path, image, capsys):
    out = tmp_path / 'pan.png'
    with pytest.raises(SystemExit) as done:
        run_tool(seem_demo.main, [image, '--config', CONFIG, '--random-weights', '--classes', 'cat,dog',
                                  '--out', str(out), '--device', 'cpu'])
    assert done.value.code == 0 and cv2.imread(str(out)).shape == (48, 60, 3)
    for argv, msg in (([], 'nothing to segment'), (['--classes', 'a', '--points', '1,1'], 'cannot be combined'),
                      (['--points', '1'], '2 comma-separated numbers')):
        with pytest.raises(SystemExit) as done:
            run_tool(seem_demo.main, [image, '--config', CONFIG, '--random-weights', '--out', str(out),
                                      '--device', 'cpu', *argv])
        assert done.value.code == 1 and msg in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_tool(seem_demo.main, [image, '--config', CONFIG, '--points', '1,1', '--out', str(out)])
    assert 'no --checkpoint' in capsys.readouterr().err


def test_fine_tuned_adapters_are_built_and_loaded(tmp_path):
    """A fine-tuning config's `peft` (decoder adapters) is applied, so its checkpoint loads with the adapters;
    a base (converted) checkpoint still loads into the adapted model."""
    cfg = 'configs/seem_ft/seem_tiny_toy-frozen-backbone-decoder-adapter.py'
    model = seem_demo.build_model(cfg, None, random_weights=True, device='cpu')
    adapter_keys = [k for k in model.state_dict() if '.adapters.' in k]
    assert adapter_keys
    state = {k: torch.full_like(v, 0.5) if k in adapter_keys else v for k, v in model.state_dict().items()}
    ckpt = tmp_path / 'ft.pth'
    torch.save({'state_dict': state, 'meta': {}}, ckpt)
    loaded = seem_demo.build_model(cfg, str(ckpt), random_weights=False, device='cpu')
    assert all(torch.equal(loaded.state_dict()[k], state[k]) for k in adapter_keys)
